package components

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/clawdeploy/clawdeploy/internal/pulumitest"
)

// TestAuthorizeKeyCommandRunsOnce runs the authorization twice in a fresh home: one line, 0600,
// and a key with a quote in its comment is taken literally.
func TestAuthorizeKeyCommandRunsOnce(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	key := "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl it's $(touch pwned)"
	for range 2 {
		cmd := exec.Command("bash", "-c", AuthorizeKeyCommand("root", key))
		cmd.Env = []string{"HOME=" + home, "PATH=" + os.Getenv("PATH")}
		out, err := cmd.CombinedOutput()
		if err != nil || string(out) != "ssh-ready\n" {
			t.Fatalf("authorize: %v %q", err, out)
		}
	}
	data, err := os.ReadFile(filepath.Join(home, ".ssh", "authorized_keys"))
	if err != nil || string(data) != key+"\n" {
		t.Errorf("authorized_keys = %q, %v", data, err)
	}
	if info, _ := os.Stat(filepath.Join(home, ".ssh", "authorized_keys")); info.Mode().Perm() != 0o600 {
		t.Errorf("authorized_keys mode %v", info.Mode().Perm())
	}
	if _, err := os.Stat("pwned"); err == nil {
		t.Errorf("the key's comment was run")
	}
}

// TestVPSComponentsRefuseAnUnpinnedHost: no host key and no explicit allowance is refused before
// anything is registered; with the allowance the connection carries no host key.
func TestVPSComponentsRefuseAnUnpinnedHost(t *testing.T) {
	t.Parallel()
	host := Host{Address: "203.0.113.10", Port: 22, User: "root"}
	_, err := pulumitest.Run(func(ctx *pulumi.Context) error {
		_, err := NewVPSSetup(ctx, "setup", &VPSSetupArgs{Host: host, PrivateKey: pulumi.String("k"), LaunchCommand: pulumi.String("true"), LaunchID: pulumi.String("id")})
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "without a pinned host key") {
		t.Errorf("unpinned host: %v", err)
	}
	host.AllowUnknownHostKey = true
	m, err := pulumitest.Run(func(ctx *pulumi.Context) error {
		_, err := NewVPSSetup(ctx, "setup", &VPSSetupArgs{Host: host, PrivateKey: pulumi.String("k"), LaunchCommand: pulumi.String("true"), LaunchID: pulumi.String("id")})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	launch, _ := m.One("command:remote:Command", "setup-launch")
	if _, pinned := launch.Input("connection.hostKey"); pinned {
		t.Errorf("a host key was set")
	}
}

func TestSSHKeyIsEd25519AndSecret(t *testing.T) {
	t.Parallel()
	m := run(t, func(ctx *pulumi.Context) error {
		_, err := NewSSHKey(ctx, "ssh-key")
		return err
	})
	key := child(t, m, TypeSSHKey, "ssh-key", "tls:index/privateKey:PrivateKey", "ssh-key-key")
	if key.String("algorithm") != "ED25519" {
		t.Errorf("algorithm %q", key.String("algorithm"))
	}
}

// TestVPSSetupWaitsOnResourcesNotComponents: the launch waits for the authorization command
// itself, every time; a component in After is refused, since a dependency on a component reaches
// only the children the SDK has registered by then (CI once saw the launch without it).
func TestVPSSetupWaitsOnResourcesNotComponents(t *testing.T) {
	t.Parallel()
	host := Host{Address: "203.0.113.10", Port: 22, User: "root", HostKey: "ssh-ed25519 AAAA"}
	// launchAfter registers the authorization and the launch, which waits for what after names.
	launchAfter := func(after func(*SSHAccess) pulumi.Resource) (*pulumitest.Mocks, error) {
		return pulumitest.Run(func(ctx *pulumi.Context) error {
			access, err := NewSSHAccess(ctx, "access", &SSHAccessArgs{Host: host, Password: pulumi.StringPtr("pw"),
				AuthorizedKey: pulumi.String("ssh-ed25519 AAAA deployment")})
			if err != nil {
				return err
			}
			_, err = NewVPSSetup(ctx, "setup", &VPSSetupArgs{Host: host, PrivateKey: pulumi.String("k"), LaunchCommand: pulumi.String("true"),
				LaunchID: pulumi.String("id"), After: []pulumi.Resource{after(access)}})
			return err
		})
	}
	if _, err := launchAfter(func(a *SSHAccess) pulumi.Resource { return a }); err == nil || !strings.Contains(err.Error(), "After holds a component") {
		t.Errorf("a component in After: %v", err)
	}
	for range 50 {
		m, err := launchAfter(func(a *SSHAccess) pulumi.Resource { return a.Authorization })
		if err != nil {
			t.Fatal(err)
		}
		launch, _ := m.One("command:remote:Command", "setup-launch")
		authorize, _ := m.One("command:remote:Command", "access-authorize")
		if !slices.Contains(launch.Request.GetDependencies(), authorize.URN) {
			t.Fatalf("the launch does not wait for the authorization: %v", launch.Request.GetDependencies())
		}
	}
}
