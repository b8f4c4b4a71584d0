package cloudinit

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/clawdeploy/clawdeploy/internal/openclaw"
)

// TestTransientSQLiteFilesAreOpenClawsOwn: the files the backup leaves out as transient (lib.sh's
// transient_sqlite) are exactly those the installed OpenClaw's own backup leaves out
// (SQLITE_MEMORY_TRANSIENT_PATH_PATTERN, read from its package and run by its Node): locks held
// as databases and a reindex's shadow copies. Its reindex lock is held exclusively while a reindex
// runs, and a backup that tried to copy it failed ("database is locked") in CI.
func TestTransientSQLiteFilesAreOpenClawsOwn(t *testing.T) {
	t.Parallel()
	in, err := openclaw.Installed()
	if err != nil {
		t.Fatal(err)
	}
	modules, err := filepath.Glob(filepath.Join(in.Modules, "openclaw", "dist", "backup-shared-*.mjs"))
	if err != nil || len(modules) != 1 {
		t.Fatalf("OpenClaw %s's backup module: %v %v", in.Version, modules, err)
	}
	src, err := os.ReadFile(modules[0])
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^const SQLITE_MEMORY_TRANSIENT_PATH_PATTERN = (/.+/[a-z]*);$`).FindSubmatch(src)
	if m == nil {
		t.Fatalf("%s no longer defines SQLITE_MEMORY_TRANSIENT_PATH_PATTERN: read what its backup leaves out now", modules[0])
	}
	const uuid = "0aa673f5-4c6e-4341-8381-913f6e82f0a1"
	var names []string
	for _, base := range []string{"openclaw-agent.sqlite", "openclaw.sqlite", "memory.sqlite"} {
		for _, name := range []string{
			base, base + "-wal", base + "-shm", base + "-journal", base + ".bak",
			base + ".reindex-lock.sqlite", base + ".generation-lock.sqlite", base + ".generation-writer.sqlite",
			base + ".reindex-lock.sqlite-wal", base + ".generation-lock.sqlite-journal", base + ".reindex-lock.sqlite.bak",
			base + ".memory-reindex-" + uuid, base + ".tmp-" + uuid + "-shm", base + ".backup-" + uuid,
			base + ".memory-reindex-not-a-uuid", base + ".MEMORY-REINDEX-" + strings.ToUpper(uuid), base + ".other-lock.sqlite",
		} {
			names = append(names, ".openclaw/agents/main/agent/"+name, "workspace/"+name, name)
		}
	}
	list, _ := json.Marshal(names)
	node := exec.Command(filepath.Join(in.NodeDir, "node"), "-e",
		"const re = "+string(m[1])+"; for (const n of JSON.parse(process.argv[1])) console.log(re.test(n))", string(list))
	js, err := node.Output()
	if err != nil {
		t.Fatalf("node: %v", err)
	}
	bash := exec.Command("bash", "-c", `. "$0"; for n in "$@"; do if transient_sqlite "$n"; then echo true; else echo false; fi; done`,
		filepath.Join("files", "lib.sh"))
	bash.Args = append(bash.Args, names...)
	bash.Env = append(os.Environ(), "OPENCLAW_ENV_FILE=/dev/null")
	sh, err := bash.Output()
	if err != nil {
		t.Fatalf("lib.sh's transient_sqlite: %v", err)
	}
	want, got := strings.Fields(string(js)), strings.Fields(string(sh))
	if len(want) != len(names) || len(got) != len(names) {
		t.Fatalf("%d names, %d answers from OpenClaw, %d from lib.sh", len(names), len(want), len(got))
	}
	transient := 0
	for i, n := range names {
		if got[i] != want[i] {
			t.Errorf("%s: OpenClaw's backup says transient=%s, lib.sh says %s", n, want[i], got[i])
		}
		if want[i] == "true" {
			transient++
		}
	}
	if transient == 0 || transient == len(names) {
		t.Errorf("%d of %d names are transient: the samples prove nothing", transient, len(names))
	}
}
