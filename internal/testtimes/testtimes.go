// Package testtimes reads the event stream of `go test -json` and says where the time went: each
// package's wall time and the slowest tests, so that the suite's cost is measured, not guessed.
package testtimes

import (
	"bufio"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Event is the part of a `go test -json` event (test2json) that Read uses.
type Event struct {
	Action  string
	Package string
	Test    string
	Elapsed float64 // seconds
}

// Result is one test's or one package's end.
type Result struct {
	Package string
	Test    string // empty for a package
	Action  string // pass, fail or skip
	Elapsed time.Duration
}

// Name is the test's name with its package's last element, or the package path.
func (r Result) Name() string {
	if r.Test == "" {
		return r.Package
	}
	return r.Package[strings.LastIndexByte(r.Package, '/')+1:] + "." + r.Test
}

// Top reports whether the result is a top-level test (not a subtest, not a package).
func (r Result) Top() bool { return r.Test != "" && !strings.Contains(r.Test, "/") }

// Report is what a run of `go test -json` ended with.
type Report struct {
	Packages []Result // in the order they ended
	Tests    []Result // tests and subtests, in the order they ended
}

// Read reads a `go test -json` stream. Lines that are not events (a build error printed
// outside the stream, say) are skipped.
func Read(r io.Reader) (*Report, error) {
	rep := &Report{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var e Event
		if json.Unmarshal(sc.Bytes(), &e) != nil {
			continue
		}
		if e.Action != "pass" && e.Action != "fail" && e.Action != "skip" {
			continue
		}
		res := Result{Package: e.Package, Test: e.Test, Action: e.Action, Elapsed: time.Duration(e.Elapsed * float64(time.Second))}
		if e.Test == "" {
			rep.Packages = append(rep.Packages, res)
		} else {
			rep.Tests = append(rep.Tests, res)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading the test events: %w", err)
	}
	return rep, nil
}

// Slowest returns the n slowest results that keep says to keep, slowest first.
func Slowest(results []Result, n int, keep func(Result) bool) []Result {
	var out []Result
	for _, r := range results {
		if keep == nil || keep(r) {
			out = append(out, r)
		}
	}
	slices.SortStableFunc(out, func(a, b Result) int { return cmp.Compare(b.Elapsed, a.Elapsed) })
	return out[:min(n, len(out))]
}

// Count returns how many results of each action there are.
func Count(results []Result, keep func(Result) bool) map[string]int {
	out := map[string]int{}
	for _, r := range results {
		if keep == nil || keep(r) {
			out[r.Action]++
		}
	}
	return out
}

// Write prints the report: the packages by wall time, then the n slowest top-level tests and the
// n slowest subtests, and the counts.
func (rep *Report) Write(w io.Writer, n int) error {
	var b strings.Builder
	fmt.Fprintf(&b, "packages by wall time:\n")
	for _, p := range Slowest(rep.Packages, len(rep.Packages), nil) {
		fmt.Fprintf(&b, "  %8.1fs  %-4s %s\n", p.Elapsed.Seconds(), p.Action, p.Package)
	}
	isSub := func(r Result) bool { return !r.Top() }
	for _, part := range []struct {
		title string
		keep  func(Result) bool
	}{{"tests", Result.Top}, {"subtests", isSub}} {
		fmt.Fprintf(&b, "the %d slowest %s:\n", n, part.title)
		for _, r := range Slowest(rep.Tests, n, part.keep) {
			fmt.Fprintf(&b, "  %8.1fs  %-4s %s\n", r.Elapsed.Seconds(), r.Action, r.Name())
		}
	}
	tops, subs := Count(rep.Tests, Result.Top), Count(rep.Tests, isSub)
	fmt.Fprintf(&b, "tests: %d passed, %d failed, %d skipped; subtests: %d passed, %d failed, %d skipped\n",
		tops["pass"], tops["fail"], tops["skip"], subs["pass"], subs["fail"], subs["skip"])
	_, err := io.WriteString(w, b.String())
	return err
}
