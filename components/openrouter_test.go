package components

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
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
		cmd := exec.Command("/bin/sh", "-c", command) // local.Command's interpreter
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

// TestOpenRouterCreateLeavesOneKey: a creation whose answer was lost left keys with the
// deployment's name; running create again deletes them, across pages of the key list, and
// leaves one key of that name, touching no other key.
func TestOpenRouterCreateLeavesOneKey(t *testing.T) {
	t.Parallel()
	api := openrouterfake.Start(t, "prov-key-1")
	name := OpenRouterKeyName("vps1", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl")
	if !regexp.MustCompile(`^openclaw-vps1-[0-9a-f]{12}$`).MatchString(name) {
		t.Fatalf("name %q", name)
	}
	others := map[string]bool{}
	for i := range 150 {
		others[api.Add(fmt.Sprintf("someone-else-%d", i))] = true
	}
	others[api.Add(name+"-2")] = true
	others[api.Add("openclaw-vps1")] = true
	orphans := []string{api.Add(name)}
	for i := range 60 { // the orphans end up on the second page too
		others[api.Add(fmt.Sprintf("zz-%d", i))] = true
	}
	orphans = append(orphans, api.Add(name))

	cmd := exec.Command("/bin/sh", "-c", OpenRouterCreateKeyCommand)
	cmd.Env = append(os.Environ(), "OPENROUTER_API_BASE="+api.URL, "OPENROUTER_PROVISIONING_KEY=prov-key-1", "OPENROUTER_KEY_NAME="+name)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("create: %v\n%s", err, stderr.String())
	}
	created, err := ParseCreatedKey(string(out))
	if err != nil {
		t.Fatal(err)
	}
	deleted := api.Deleted()
	slices.Sort(deleted)
	if !slices.Equal(deleted, orphans) {
		t.Errorf("deleted %v, want the orphans %v", deleted, orphans)
	}
	live := api.Live()
	for h := range others {
		if _, ok := live[h]; !ok {
			t.Errorf("key %s (%s) of someone else was deleted", h, live[h])
		}
	}
	named := 0
	for _, n := range live {
		if n == name {
			named++
		}
	}
	if named != 1 || live[created.Data.Hash] != name {
		t.Errorf("%d keys named %s; the new one is %s", named, name, created.Data.Hash)
	}
	if !strings.Contains(stderr.String(), "left by an interrupted creation of "+name) {
		t.Errorf("stderr: %s", stderr.String())
	}
}
