package cloudinit

import (
	"net/http"
	"net/http/httptest"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
)

// loadCompose loads the gateway's compose file the way docker compose does, with both services
// (the CLI's profile enabled) and the data folder at /opt/openclaw.
func loadCompose(t *testing.T) *types.Project {
	t.Helper()
	b, err := content.ReadFile("files/docker-compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	project, err := loader.LoadWithContext(t.Context(), types.ConfigDetails{
		WorkingDir:  t.TempDir(),
		ConfigFiles: []types.ConfigFile{{Filename: "docker-compose.yaml", Content: b}},
		Environment: types.Mapping{"OPENCLAW_IMAGE": "ghcr.io/openclaw/openclaw:2026.2.26", "OPENCLAW_DATA_DIR": DataDir},
	}, func(o *loader.Options) {
		o.SetProjectName("openclaw", true)
		o.Profiles = []string{"cli"}
		o.SkipResolveEnvironment = true // the env file is written on the host at each start
	})
	if err != nil {
		t.Fatalf("loading the compose file: %v", err)
	}
	return project
}

// stateDirsOfLib reads STATE_DIRS, the directories the instance scripts back up and restore,
// from lib.sh.
func stateDirsOfLib(t *testing.T) []string {
	t.Helper()
	b, err := content.ReadFile("files/lib.sh")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^STATE_DIRS=\(([^)]*)\)`).FindSubmatch(b)
	if m == nil {
		t.Fatal("lib.sh sets no STATE_DIRS")
	}
	return strings.Fields(string(m[1]))
}

// TestComposeKeepsEveryStateDirectoryOnTheDataVolume loads the compose file with compose-go:
// each of OpenClaw's three state paths (its state directory, the workspace, the auth-profile key
// directory) is, in the gateway and in the CLI service, a bind mount of a directory the scripts
// back up (STATE_DIRS) under the data folder; no named volume or tmpfs holds anything.
func TestComposeKeepsEveryStateDirectoryOnTheDataVolume(t *testing.T) {
	t.Parallel()
	project := loadCompose(t)
	if len(project.Volumes) != 0 {
		t.Errorf("named volumes %v: their data would live outside the data volume and its backups", project.Volumes)
	}
	backedUp := stateDirsOfLib(t)
	want := map[string]string{ // container path → directory under the data folder
		"/home/node/.openclaw":           ".openclaw",
		"/home/node/.openclaw/workspace": "workspace",
		"/home/node/.config/openclaw":    "auth-profile-secrets",
	}
	for _, name := range []string{"openclaw-gateway", "openclaw-cli"} {
		svc, ok := project.Services[name]
		if !ok {
			t.Fatalf("no service %s in %v", name, project.ServiceNames())
		}
		got := map[string]string{}
		for _, v := range svc.Volumes {
			rel, under := strings.CutPrefix(v.Source, DataDir+"/")
			if v.Type != types.VolumeTypeBind || !under || v.ReadOnly {
				t.Errorf("%s: volume %s:%s (%s) is not a writable bind mount under %s", name, v.Source, v.Target, v.Type, DataDir)
				continue
			}
			got[v.Target] = rel
		}
		for target, dir := range want {
			if got[target] != dir {
				t.Errorf("%s: %s is mounted from %q, want %s/%s", name, target, got[target], DataDir, dir)
			}
		}
		for target, dir := range got {
			if !strings.Contains(" "+strings.Join(backedUp, " ")+" ", " "+dir+" ") {
				t.Errorf("%s: %s comes from %s/%s, which the backups do not hold (STATE_DIRS %v)", name, target, DataDir, dir, backedUp)
			}
		}
		if len(svc.Tmpfs) != 0 {
			t.Errorf("%s: tmpfs %v", name, svc.Tmpfs)
		}
	}
}

// TestComposeHealthcheckWantsStarted runs the gateway's healthcheck, as the container would with
// the image's node, against stand-ins of /startupz and /healthz: healthy is /startupz answering
// 200 with "started"; "starting" and "draining" are not; an image without /startupz (its
// Control UI answers the path with a page) is healthy when /healthz answers "ok": true.
func TestComposeHealthcheckWantsStarted(t *testing.T) {
	t.Parallel()
	hc := loadCompose(t).Services["openclaw-gateway"].HealthCheck
	if hc == nil || len(hc.Test) != 4 || hc.Test[0] != "CMD" || hc.Test[1] != "node" || hc.Test[2] != "-e" {
		t.Fatalf("healthcheck %+v: want node -e (the image's own runtime, not a tool it may lack)", hc)
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatalf("node is needed to run the healthcheck: %v", err)
	}
	const page = "<!doctype html><html></html>"
	for _, tc := range []struct {
		startupCode     int
		startup, health string
		healthy         bool
	}{
		{200, `{"ok":true,"status":"started"}`, `{"ok":true,"status":"live"}`, true},
		{503, `{"ok":false,"status":"starting"}`, `{"ok":true,"status":"live"}`, false},
		{503, `{"ok":false,"status":"draining"}`, `{"ok":true,"status":"live"}`, false},
		{200, page, `{"ok":true,"status":"live"}`, true},
		{200, page, `{"ok":false,"status":"live"}`, false},
		{200, page, page, false},
		{200, page, `{"status":"live"}`, false},
		{200, page, `{"ok":"true","status":"start"}`, false},
	} {
		server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/startupz":
				w.WriteHeader(tc.startupCode)
				_, _ = w.Write([]byte(tc.startup))
			case "/healthz":
				_, _ = w.Write([]byte(tc.health))
			default:
				_, _ = w.Write([]byte(page))
			}
		}))
		script := strings.ReplaceAll(hc.Test[3], "http://127.0.0.1:18789", server.URL)
		if script == hc.Test[3] {
			t.Fatalf("the healthcheck does not ask http://127.0.0.1:18789: %s", hc.Test[3])
		}
		err := exec.CommandContext(t.Context(), "node", "-e", script).Run()
		server.Close()
		if (err == nil) != tc.healthy {
			t.Errorf("/startupz %d %s, /healthz %s: healthcheck error %v, want healthy=%v", tc.startupCode, tc.startup, tc.health, err, tc.healthy)
		}
	}
}
