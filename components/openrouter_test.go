package components

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/clawdeploy/clawdeploy/internal/openrouterfake"
)

// TestOpenRouterCommandsRunVerbatim runs the create and delete commands local.Command runs,
// with curl, against the fake API: a key is created, parsed from the answer, and deleted by the
// hash read back from what create printed.
func TestOpenRouterCommandsRunVerbatim(t *testing.T) {
	t.Parallel()
	api := openrouterfake.Start(t, "prov-key-1")
	run := func(command string, env ...string) (string, error) {
		cmd := exec.Command("bash", "-c", command)
		cmd.Env = append(os.Environ(), "OPENROUTER_API_BASE="+api.URL, "OPENROUTER_PROVISIONING_KEY=prov-key-1", "OPENROUTER_KEY_NAME=openclaw-vps1")
		cmd.Env = append(cmd.Env, env...)
		out, err := cmd.Output()
		return string(out), err
	}
	stdout, err := run(OpenRouterCreateKeyCommand)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	created, err := ParseCreatedKey(stdout)
	if err != nil || created.Key != openrouterfake.Key(created.Data.Hash) {
		t.Fatalf("parsed %+v from %q: %v", created, stdout, err)
	}
	if live := api.Live(); live[created.Data.Hash] != "openclaw-vps1" {
		t.Errorf("live keys %v", live)
	}
	if _, err := run(OpenRouterDeleteKeyCommand, "PULUMI_COMMAND_STDOUT="+stdout); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if d := api.Deleted(); len(d) != 1 || d[0] != created.Data.Hash || len(api.Live()) != 0 {
		t.Errorf("deleted %v, live %v", d, api.Live())
	}
	// A wrong provisioning key fails the create (curl -f), so the stage fails rather than
	// carrying an error page as a key.
	if _, err := run(OpenRouterCreateKeyCommand, "OPENROUTER_PROVISIONING_KEY=wrong"); err == nil {
		t.Errorf("create with a wrong provisioning key succeeded")
	}
	if _, err := ParseCreatedKey(`{"error":{"message":"x"}}`); err == nil || strings.Contains(err.Error(), "x") {
		t.Errorf("parse of an error answer: %v", err)
	}
}
