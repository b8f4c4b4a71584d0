package automation_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clawdeploy/clawdeploy/internal/enginetest"
	"github.com/clawdeploy/clawdeploy/internal/simprovider"
)

// rawSim runs clawdeploy-sim --json and returns its stdout lines, its stderr and its exit code.
func rawSim(t *testing.T, sim *enginetest.Sim, program string, args ...string) ([]string, string, int) {
	t.Helper()
	cmd := exec.Command(filepath.Join(sim.Bins.Dir, "clawdeploy-sim"), append([]string{"--json"}, args...)...)
	cmd.Env = sim.Environ("SIMDRIVER_PROGRAM=" + program)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n"), stderr.String(), code
}

// required are the fields each event type must carry, beyond time, type and stack.
var required = map[string][]string{
	"stage":      {"stage"},
	"resource":   {"phase", "op", "urn", "resourceType"},
	"diagnostic": {"severity", "message"},
	"status":     {"status"},
	"result":     {"operation", "ok", "exitCode"},
}

// checkNDJSON holds every line of lines to the contract of docs/reference.md and returns the events by type.
func checkNDJSON(t *testing.T, lines []string, stack string) map[string][]map[string]any {
	t.Helper()
	byType := map[string][]map[string]any{}
	for i, line := range lines {
		var e map[string]any
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Errorf("line %d is not a JSON object: %q", i+1, line)
			continue
		}
		ts, _ := e["time"].(string)
		if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
			t.Errorf("line %d: time %q is not RFC 3339", i+1, ts)
		}
		typ, _ := e["type"].(string)
		fields, known := required[typ]
		if !known {
			t.Errorf("line %d: unknown type %q", i+1, typ)
		}
		if e["stack"] != stack {
			t.Errorf("line %d: stack %v, want %s", i+1, e["stack"], stack)
		}
		for _, f := range fields {
			if _, ok := e[f]; !ok {
				t.Errorf("line %d (%s) has no %s: %s", i+1, typ, f, line)
			}
		}
		byType[typ] = append(byType[typ], e)
	}
	if n := len(byType["result"]); n != 1 || lines[len(lines)-1] == "" || !strings.Contains(lines[len(lines)-1], `"type":"result"`) {
		t.Errorf("%d result events; the last line must be the only one: %q", n, lines[len(lines)-1])
	}
	return byType
}

// TestNDJSONContract runs a successful up, a failing up and an up with invalid configuration
// with --json, and holds every line of stdout to the contract docs/reference.md documents.
func TestNDJSONContract(t *testing.T) {
	t.Parallel()
	sim := enginetest.NewSim(t, bins)

	lines, stderr, code := rawSim(t, sim, "six", "up", "--stack", "dev")
	if code != 0 {
		t.Fatalf("up exited %d\n%s", code, stderr)
	}
	ev := checkNDJSON(t, lines, "dev")
	var statuses, stages []string
	for _, e := range ev["status"] {
		statuses = append(statuses, e["status"].(string))
	}
	for _, e := range ev["stage"] {
		stages = append(stages, e["stage"].(string))
	}
	if strings.Join(statuses, ",") != "PROVISIONING,INSTALLING,READY" {
		t.Errorf("statuses %v", statuses)
	}
	if len(stages) == 0 || stages[len(stages)-1] != "setup_complete" {
		t.Errorf("stages %v", stages)
	}
	if n := len(ev["resource"]); n < 12 {
		t.Errorf("%d resource events for six resources", n)
	}
	res := ev["result"][0]
	if res["ok"] != true || res["exitCode"] != 0.0 || res["operation"] != "up" {
		t.Errorf("result %v", res)
	}
	if outs, _ := res["outputs"].(map[string]any); outs["top"] == nil {
		t.Errorf("the result has no outputs: %v", res)
	}

	if err := simprovider.WriteControl(sim.Control, simprovider.Control{Fail: []string{"create urn:pulumi:failing::"}}); err != nil {
		t.Fatal(err)
	}
	lines, _, code = rawSim(t, sim, "six", "up", "--stack", "failing")
	ev = checkNDJSON(t, lines, "failing")
	res = ev["result"][0]
	if code != 1 || res["ok"] != false || res["exitCode"] != 1.0 || !strings.Contains(res["error"].(string), "simulated failure") {
		t.Errorf("a failing up: exit %d, result %v", code, res)
	}
	last := ev["status"][len(ev["status"])-1]
	if last["status"] != "ERROR" {
		t.Errorf("a failing up ends in %v", last)
	}

	// The real program refuses invalid configuration before anything exists.
	before := sim.Load(t)
	lines, _, code = rawSim(t, sim, "real", "up", "--stack", "bad", "--config", "aws:region=me-central-1",
		"--config", "availability_zone=eu-west-1a", "--secret", "gateway_token=x")
	ev = checkNDJSON(t, lines, "bad")
	res = ev["result"][0]
	if code != 2 || res["exitCode"] != 2.0 || !strings.Contains(res["error"].(string), "availability_zone") {
		t.Errorf("invalid config: exit %d, result %v", code, res)
	}
	if len(ev["resource"]) != 0 || len(ev["status"]) != 0 {
		t.Errorf("invalid config reached the engine: %v", ev)
	}
	if after := sim.Load(t); len(after.Resources) != len(before.Resources) {
		t.Errorf("invalid config changed the cloud: %d resources, were %d", len(after.Resources), len(before.Resources))
	}
	if _, err := os.Stat(filepath.Join(sim.StateDir, "state", ".pulumi", "stacks", "openclaw", "bad.json")); err == nil {
		t.Error("invalid config created the stack")
	}
}
