package ec2spot

import (
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/workspace"

	"github.com/clawdeploy/clawdeploy"
	"github.com/clawdeploy/clawdeploy/internal/enginetest"
	"github.com/clawdeploy/clawdeploy/targets/stackconfig"
)

// TestPulumiYAMLDeclaresEveryKey keeps Pulumi.yaml's typed config block, which `pulumi config`
// documents and the CLI enforces, in step with what Load reads and defaults.
func TestPulumiYAMLDeclaresEveryKey(t *testing.T) {
	t.Parallel()
	proj, err := workspace.LoadProject(filepath.Join(enginetest.RepoRoot(t), "Pulumi.yaml"))
	if err != nil {
		t.Fatalf("loading Pulumi.yaml: %v", err)
	}
	if proj.Name != clawdeploy.Project || proj.Main != "./cmd/infra" || proj.Runtime.Name() != "go" {
		t.Errorf("project name/main/runtime = %s/%s/%s", proj.Name, proj.Main, proj.Runtime.Name())
	}
	if proj.Backend == nil || proj.Backend.URL != "file://~/.pulumi" {
		t.Errorf("backend = %+v, want the local file backend", proj.Backend)
	}

	var declared []string
	defaults := map[string]string{"aws:region": "me-central-1", KeyAvailabilityZone: "me-central-1a"}
	for key, typ := range proj.Config {
		declared = append(declared, key)
		if typ.Description == "" {
			t.Errorf("%s has no description", key)
		}
		if _, secret := stackconfig.SecretKeys[key]; secret && typ.Default != "" {
			t.Errorf("secret %s has a default", key)
		}
		if typ.Default != nil {
			defaults[key] = fmt.Sprint(typ.Default)
		}
	}
	if want := slices.Sorted(slices.Values(Keys)); !slices.Equal(slices.Sorted(slices.Values(declared)), want) {
		t.Errorf("Pulumi.yaml declares %v\nthe program reads %v", slices.Sorted(slices.Values(declared)), want)
	}
	if typ := proj.Config[KeyAvailabilityZone]; typ.Default != nil {
		t.Errorf("availability_zone has a default %v: it must be required", typ.Default)
	}

	// The CLI injects the declared defaults; with them Load must see what it sees without them.
	withYAML, err := loadConfig(t, defaults, nil)
	if err != nil {
		t.Fatalf("Load with Pulumi.yaml defaults: %v", err)
	}
	withGo, err := loadConfig(t, map[string]string{"aws:region": "me-central-1", KeyAvailabilityZone: "me-central-1a"}, nil)
	if err != nil {
		t.Fatalf("Load with Go defaults: %v", err)
	}
	if fmt.Sprintf("%+v", *withYAML) != fmt.Sprintf("%+v", *withGo) {
		t.Errorf("defaults differ:\nPulumi.yaml %+v\nGo          %+v", *withYAML, *withGo)
	}
}

// TestExampleStackIsValid loads Pulumi.dev.yaml, the runbook's example, through Load.
func TestExampleStackIsValid(t *testing.T) {
	t.Parallel()
	stack, err := workspace.LoadProjectStack(nil, nil, filepath.Join(enginetest.RepoRoot(t), "Pulumi.dev.yaml"))
	if err != nil {
		t.Fatalf("loading Pulumi.dev.yaml: %v", err)
	}
	plain := map[string]string{}
	for k, v := range stack.Config {
		s, err := v.Value(nil)
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		plain[k.String()] = s
	}
	cfg, err := loadConfig(t, plain, nil)
	if err != nil {
		t.Fatalf("Load of Pulumi.dev.yaml: %v", err)
	}
	if cfg.Region != "me-central-1" || cfg.AvailabilityZone != "me-central-1a" || cfg.InstanceType != "t4g.small" {
		t.Errorf("example stack = %+v", cfg)
	}
}
