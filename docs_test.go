package clawdeploy_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"github.com/clawdeploy/clawdeploy/automation"
)

// The guides: the README and every page under docs/.
func guides(t *testing.T) []string {
	t.Helper()
	pages, err := filepath.Glob(filepath.Join("docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	return append([]string{"README.md"}, pages...)
}

// markdownLink is an inline link or image: [text](target) or ![alt](target).
var markdownLink = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// prose returns the lines of a Markdown file outside its fenced code blocks, numbered from 1.
func prose(t *testing.T, path string) map[int]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := map[int]string{}
	fence := ""
	for i, line := range strings.Split(string(b), "\n") {
		trimmed := strings.TrimLeft(line, " ")
		switch {
		case fence == "" && (strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~")):
			fence = leadingRun(trimmed)
		case fence != "" && strings.HasPrefix(trimmed, fence) && leadingRun(trimmed) == trimmed:
			fence = ""
		case fence == "":
			lines[i+1] = line
		}
	}
	return lines
}

// leadingRun is the run of the first character that opens s: a code fence (``` or ````).
func leadingRun(s string) string {
	return s[:len(s)-len(strings.TrimLeft(s, s[:1]))]
}

// anchors are the fragment identifiers GitHub gives the headings of a Markdown file: lower case,
// punctuation dropped, spaces as hyphens, a repeated one suffixed -1, -2, ….
func anchors(t *testing.T, path string) map[string]bool {
	t.Helper()
	seen := map[string]int{}
	ids := map[string]bool{}
	for _, line := range prose(t, path) {
		if !strings.HasPrefix(line, "#") {
			continue
		}
		title := strings.TrimSpace(strings.TrimLeft(line, "#"))
		var b strings.Builder
		for _, r := range strings.ToLower(title) {
			switch {
			case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_':
				b.WriteRune(r)
			case r == ' ':
				b.WriteRune('-')
			}
		}
		id := b.String()
		if n := seen[id]; n > 0 {
			ids[id+"-"+strconv.Itoa(n)] = true
		} else {
			ids[id] = true
		}
		seen[id]++
	}
	return ids
}

// TestDocLinksResolve: every relative link of the README and docs/ names a file that exists and,
// with a #fragment, a heading of that file.
func TestDocLinksResolve(t *testing.T) {
	t.Parallel()
	for _, page := range guides(t) {
		lines := prose(t, page)
		numbers := make([]int, 0, len(lines))
		for n := range lines {
			numbers = append(numbers, n)
		}
		slices.Sort(numbers)
		for _, n := range numbers {
			for _, m := range markdownLink.FindAllStringSubmatch(lines[n], -1) {
				target := m[1]
				if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
					continue
				}
				file, fragment, _ := strings.Cut(target, "#")
				resolved := page
				if file != "" {
					resolved = filepath.Join(filepath.Dir(page), file)
					if _, err := os.Stat(resolved); err != nil {
						t.Errorf("%s:%d: link %s: no such file %s", page, n, target, resolved)
						continue
					}
				}
				if fragment != "" && !anchors(t, resolved)[fragment] {
					t.Errorf("%s:%d: link %s: %s has no heading #%s", page, n, target, resolved, fragment)
				}
			}
		}
	}
}

// TestREADMEIsAGuide: the README stays a guide of at most 200 lines; the reference is in docs/.
func TestREADMEIsAGuide(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "\n"); n > 200 {
		t.Errorf("README.md has %d lines, more than 200: move the detail to a guide in docs/", n)
	}
}

// listedPackage is what `go list` says of one package of the module.
type listedPackage struct {
	ImportPath string
	Imports    []string
}

// modulePackages lists the module's packages with their imports (tests' imports left out).
func modulePackages(t *testing.T) []listedPackage {
	t.Helper()
	cmd := exec.Command("go", "list", "-json=ImportPath,Imports", "./...")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list ./...: %v", err)
	}
	var pkgs []listedPackage
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p listedPackage
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

const module = "github.com/clawdeploy/clawdeploy"

// relative is a package's path inside the module, as the architecture's table names it.
func relative(importPath string) string {
	if importPath == module {
		return "clawdeploy"
	}
	return strings.TrimPrefix(importPath, module+"/")
}

// layerRow is a row of the layer table: | layer | `pkg`, `pkg` | what it holds |.
var layerRow = regexp.MustCompile(`^\| (\d+) \| ([^|]+) \|`)

// codeSpan is a name in backquotes.
var codeSpan = regexp.MustCompile("`([^`]+)`")

// layers reads docs/architecture.md's layer table: each package's layer.
func layers(t *testing.T) map[string]int {
	t.Helper()
	layer := map[string]int{}
	for _, line := range prose(t, filepath.Join("docs", "architecture.md")) {
		m := layerRow.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		n, _ := strconv.Atoi(m[1])
		for _, name := range codeSpan.FindAllStringSubmatch(m[2], -1) {
			layer[strings.TrimSuffix(name[1], "/")] = n
		}
	}
	return layer
}

// TestArchitectureMapIsTrue: docs/architecture.md's layer table names every package of the
// module and nothing else, and every package imports only packages of lower layers.
func TestArchitectureMapIsTrue(t *testing.T) {
	t.Parallel()
	layer := layers(t)
	pkgs := modulePackages(t)
	listed := map[string]bool{}
	for _, p := range pkgs {
		name := relative(p.ImportPath)
		listed[name] = true
		if _, ok := layer[name]; !ok {
			t.Errorf("package %s is not in docs/architecture.md's layer table", name)
		}
	}
	for name := range layer {
		if !listed[name] {
			t.Errorf("docs/architecture.md's layer table names %s, which go list ./... does not know", name)
		}
	}
	for _, p := range pkgs {
		name := relative(p.ImportPath)
		from, ok := layer[name]
		if !ok {
			continue
		}
		for _, imp := range p.Imports {
			if imp != module && !strings.HasPrefix(imp, module+"/") {
				continue
			}
			to, ok := layer[relative(imp)]
			if ok && to >= from {
				t.Errorf("%s (layer %d) imports %s (layer %d): a package imports only lower layers",
					name, from, relative(imp), to)
			}
			if !strings.HasPrefix(name, "internal/") && strings.HasPrefix(relative(imp), "internal/") {
				t.Errorf("%s imports %s: production code never imports internal/", name, relative(imp))
			}
		}
	}
	if t.Failed() {
		fmt.Fprintln(os.Stderr, "the layer each package needs, from its imports:")
		for _, p := range pkgs {
			fmt.Fprintf(os.Stderr, "  %s %d\n", relative(p.ImportPath), needed(pkgs, p.ImportPath, map[string]int{}))
		}
	}
}

// needed is the lowest layer a package can sit at: one above the highest of its imports.
func needed(pkgs []listedPackage, path string, memo map[string]int) int {
	if n, ok := memo[path]; ok {
		return n
	}
	memo[path] = 0
	n := 0
	for _, p := range pkgs {
		if p.ImportPath != path {
			continue
		}
		for _, imp := range p.Imports {
			if imp == module || strings.HasPrefix(imp, module+"/") {
				n = max(n, needed(pkgs, imp, memo)+1)
			}
		}
	}
	memo[path] = n
	return n
}

// keyTable is a heading of docs/reference.md over a target's configuration keys:
// "## Configuration keys (ec2-spot)".
var keyTable = regexp.MustCompile(`^## Configuration keys \(([a-z0-9-]+)\)$`)

// referenceKeys reads docs/reference.md's key tables: the keys in the first column of each,
// by the target its heading names.
func referenceKeys(t *testing.T) map[string][]string {
	t.Helper()
	lines := prose(t, filepath.Join("docs", "reference.md"))
	keys := map[string][]string{}
	target := ""
	for _, i := range slices.Sorted(maps.Keys(lines)) {
		line := lines[i]
		switch m := keyTable.FindStringSubmatch(line); {
		case m != nil:
			target = m[1]
		case strings.HasPrefix(line, "## "):
			target = ""
		case target != "" && strings.HasPrefix(line, "| `"):
			first := strings.SplitN(line, "|", 3)[1]
			for _, k := range codeSpan.FindAllStringSubmatch(first, -1) {
				keys[target] = append(keys[target], k[1])
			}
		}
	}
	return keys
}

// TestReferenceNamesEveryKey: docs/reference.md has a table of each target's configuration keys
// naming every key the target reads, and no other.
func TestReferenceNamesEveryKey(t *testing.T) {
	t.Parallel()
	documented := referenceKeys(t)
	for _, target := range automation.Targets() {
		table, ok := documented[target.Name]
		if !ok {
			t.Errorf("docs/reference.md has no \"## Configuration keys (%s)\" table", target.Name)
			continue
		}
		for _, k := range target.Keys {
			if !slices.Contains(table, k) {
				t.Errorf("docs/reference.md's %s table lacks %s", target.Name, k)
			}
		}
		for _, k := range table {
			if !slices.Contains(target.Keys, k) {
				t.Errorf("docs/reference.md's %s table names %s, which the target does not read", target.Name, k)
			}
		}
	}
}

// TestREADMEListsWhatTheTestsInstall: the Debian packages the README says `make test` installs
// are the packages scripts/install-test-deps.sh installs, no more and no fewer.
func TestREADMEListsWhatTheTestsInstall(t *testing.T) {
	t.Parallel()
	script, err := os.ReadFile(filepath.Join("scripts", "install-test-deps.sh"))
	if err != nil {
		t.Fatal(err)
	}
	installed := map[string]bool{}
	for _, m := range regexp.MustCompile(`\[[^\]]+\]=([a-z0-9.-]+)`).FindAllStringSubmatch(string(script), -1) {
		installed[m[1]] = true
	}
	for _, m := range regexp.MustCompile(`missing\+=\(([a-z0-9.-]+)\)`).FindAllStringSubmatch(string(script), -1) {
		installed[m[1]] = true
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("on\\s+Debian\\s+`([^`]+)`\\s+with apt-get").FindSubmatch(readme)
	if m == nil {
		t.Fatal("the README does not say which Debian packages `make test` installs (\"on Debian `…` with apt-get\")")
	}
	listed := strings.Fields(string(m[1]))
	if want := slices.Sorted(maps.Keys(installed)); !slices.Equal(slices.Sorted(slices.Values(listed)), want) {
		t.Errorf("the README lists %v; scripts/install-test-deps.sh installs %v", slices.Sorted(slices.Values(listed)), want)
	}
}
