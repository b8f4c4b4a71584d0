package components

import (
	"errors"
	"fmt"
	"strings"

	"github.com/pulumi/pulumi-command/sdk/go/command/remote"
	"github.com/pulumi/pulumi-tls/sdk/v5/go/tls"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/clawdeploy/clawdeploy/setup"
)

// Type tokens of the vps components.
const (
	TypeSSHKey    = "clawdeploy:vps:SSHKey"
	TypeSSHAccess = "clawdeploy:vps:SSHAccess"
	TypeVPSSetup  = "clawdeploy:vps:VPSSetup"
)

// SSHKey is the deployment's own SSH key pair (ed25519), kept in the stack's state as a secret.
type SSHKey struct {
	pulumi.ResourceState

	// PublicKey is the public half in authorized_keys form.
	PublicKey pulumi.StringOutput `pulumi:"publicKey"`
	// PrivateKey is the private half in OpenSSH form, a secret.
	PrivateKey pulumi.StringOutput `pulumi:"privateKey"`
}

// NewSSHKey generates the key pair.
func NewSSHKey(ctx *pulumi.Context, name string, opts ...pulumi.ResourceOption) (*SSHKey, error) {
	c := &SSHKey{}
	if err := ctx.RegisterComponentResource(TypeSSHKey, name, c, opts...); err != nil {
		return nil, err
	}
	key, err := tls.NewPrivateKey(ctx, name+"-key", &tls.PrivateKeyArgs{Algorithm: pulumi.String("ED25519")}, pulumi.Parent(c))
	if err != nil {
		return nil, err
	}
	c.PublicKey = key.PublicKeyOpenssh.ApplyT(strings.TrimSpace).(pulumi.StringOutput)
	c.PrivateKey = pulumi.ToSecret(key.PrivateKeyOpenssh).(pulumi.StringOutput)
	if err := ctx.RegisterResourceOutputs(c, pulumi.Map{"publicKey": c.PublicKey, "privateKey": c.PrivateKey}); err != nil {
		return nil, err
	}
	return c, nil
}

// Host is a host reachable over SSH and how to check that it is the right one.
type Host struct {
	Address string
	Port    int
	User    string
	// HostKey is the host's public key in authorized_keys form. Empty is allowed only with
	// AllowUnknownHostKey: every connection then trusts whatever key the host presents.
	HostKey             string
	AllowUnknownHostKey bool
}

func (h Host) validate(component string) error {
	if h.Address == "" || h.User == "" || h.Port < 1 || h.Port > 65535 {
		return fmt.Errorf("components: %s needs a host address, a user and a port in 1..65535, got %q, %q, %d", component, h.Address, h.User, h.Port)
	}
	if h.HostKey == "" && !h.AllowUnknownHostKey {
		return fmt.Errorf("components: %s: refusing %s without a pinned host key (allow unknown host keys explicitly)", component, h.Address)
	}
	return nil
}

// connection returns the remote connection that logs in with privateKey or password.
func (h Host) connection(privateKey, password pulumi.StringPtrInput) remote.ConnectionArgs {
	c := remote.ConnectionArgs{
		Host:       pulumi.String(h.Address),
		Port:       pulumi.Float64(float64(h.Port)),
		User:       pulumi.String(h.User),
		PrivateKey: privateKey,
		Password:   password,
		// Bounded: a host that does not answer fails the step instead of holding the deployment.
		DialErrorLimit: pulumi.Int(10),
		PerDialTimeout: pulumi.Int(15),
	}
	if h.HostKey != "" {
		c.HostKey = pulumi.String(h.HostKey)
	}
	return c
}

// SSHAccessArgs configures SSHAccess.
type SSHAccessArgs struct {
	Host Host
	// PrivateKey or Password is the credential the operator was given for the host.
	PrivateKey pulumi.StringPtrInput
	Password   pulumi.StringPtrInput
	// AuthorizedKey is the deployment's public key, to be authorized for Host.User.
	AuthorizedKey pulumi.StringInput
}

// SSHAccess authorizes the deployment's key on the host, logging in with the operator's
// credential once; everything after it logs in with the deployment's key. Its completion is the
// ssh_ready stage: the host answered, with the pinned host key.
type SSHAccess struct {
	pulumi.ResourceState

	// Ready is the host's answer, "ssh-ready", once the key is authorized.
	Ready pulumi.StringOutput `pulumi:"ready"`
	// Authorization is the command that authorizes the key: what a later step that logs in
	// with the key depends on.
	Authorization pulumi.CustomResource
}

// AuthorizeKeyCommand returns the command that appends key to user's authorized_keys unless it
// is already there, and prints "ssh-ready". Running it again changes nothing. A user other than
// root must have passwordless sudo, which the setup runs through: the command checks it first
// and says so when it does not.
func AuthorizeKeyCommand(user, key string) string {
	q := "'" + strings.ReplaceAll(strings.TrimSpace(key), "'", `'\''`) + "'"
	var sudo []string
	if user != "root" {
		sudo = []string{
			"if ! sudo -n true 2>/dev/null; then",
			"  echo " + shellQuote("user "+user+" logged in, but cannot run sudo without a password (sudo -n true failed): "+
				"the setup runs as root; give "+user+" passwordless sudo (a file in /etc/sudoers.d with "+user+
				" ALL=(ALL) NOPASSWD:ALL) or set vps_user to root") + " >&2",
			"  exit 1",
			"fi",
		}
	}
	return strings.Join(append(append([]string{"set -eu"}, sudo...),
		"umask 077",
		`mkdir -p "$HOME/.ssh"`,
		`touch "$HOME/.ssh/authorized_keys"`,
		"grep -qxF "+q+` "$HOME/.ssh/authorized_keys" || printf '%s\n' `+q+` >> "$HOME/.ssh/authorized_keys"`,
		"echo ssh-ready",
	), "\n")
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// NewSSHAccess authorizes the key.
func NewSSHAccess(ctx *pulumi.Context, name string, args *SSHAccessArgs, opts ...pulumi.ResourceOption) (*SSHAccess, error) {
	if args == nil {
		return nil, errors.New("components: NewSSHAccess needs args")
	}
	if err := args.Host.validate("NewSSHAccess " + name); err != nil {
		return nil, err
	}
	if args.PrivateKey == nil && args.Password == nil {
		return nil, fmt.Errorf("components: NewSSHAccess %s needs a private key or a password", name)
	}
	c := &SSHAccess{}
	if err := ctx.RegisterComponentResource(TypeSSHAccess, name, c, opts...); err != nil {
		return nil, err
	}
	cmd, err := remote.NewCommand(ctx, name+"-authorize", &remote.CommandArgs{
		Connection: args.Host.connection(args.PrivateKey, args.Password),
		Create: args.AuthorizedKey.ToStringOutput().ApplyT(func(key string) string {
			return AuthorizeKeyCommand(args.Host.User, key)
		}).(pulumi.StringOutput),
	}, pulumi.Parent(c), pulumi.AdditionalSecretOutputs([]string{"connection"}))
	if err != nil {
		return nil, err
	}
	c.Authorization = cmd
	c.Ready = cmd.Stdout.ApplyT(strings.TrimSpace).(pulumi.StringOutput)
	if err := ctx.RegisterResourceOutputs(c, pulumi.Map{"ready": c.Ready}); err != nil {
		return nil, err
	}
	return c, nil
}

// VPSSetupArgs configures VPSSetup.
type VPSSetupArgs struct {
	Host Host
	// PrivateKey logs in: the deployment's key, authorized by SSHAccess.
	PrivateKey pulumi.StringInput
	// LaunchCommand launches the setup script detached (setup.Launch.Command): one session,
	// returning at once. It carries the settings and the host's secrets, so it is kept as a
	// secret and sent on the session's standard input, never in a command line.
	LaunchCommand pulumi.StringInput
	// LaunchID identifies what is launched (setup.Launch.ID): a new ID relaunches.
	LaunchID pulumi.StringInput
	// After are resources the launch waits for: the key's authorization (SSHAccess.Authorization).
	// Each must be a custom resource: a dependency on a component reaches only the children
	// registered by the time the launch registers, which the SDK does concurrently, so it
	// sometimes misses them (CI saw the launch run without waiting for the authorization).
	After []pulumi.Resource
}

// VPSSetup launches the setup script on the host. The script runs on after the session ends;
// the driver polls its markers. An `up` with the same script and settings does nothing; changed
// ones replace this resource, which relaunches.
type VPSSetup struct {
	pulumi.ResourceState

	// Launched is what the launch printed: "LAUNCH started", "LAUNCH already-running" or
	// "LAUNCH already-complete".
	Launched pulumi.StringOutput `pulumi:"launched"`
	// LaunchID is the identity of what was launched.
	LaunchID pulumi.StringOutput `pulumi:"launchId"`
}

// NewVPSSetup launches the script.
func NewVPSSetup(ctx *pulumi.Context, name string, args *VPSSetupArgs, opts ...pulumi.ResourceOption) (*VPSSetup, error) {
	if args == nil {
		return nil, errors.New("components: NewVPSSetup needs args")
	}
	if err := args.Host.validate("NewVPSSetup " + name); err != nil {
		return nil, err
	}
	if args.LaunchID == nil {
		return nil, fmt.Errorf("components: NewVPSSetup %s needs a launch id", name)
	}
	for _, r := range args.After {
		if _, custom := r.(pulumi.CustomResource); !custom {
			return nil, fmt.Errorf("components: NewVPSSetup %s: After holds a component (%T); name the resources it waits for", name, r)
		}
	}
	c := &VPSSetup{}
	if err := ctx.RegisterComponentResource(TypeVPSSetup, name, c, opts...); err != nil {
		return nil, err
	}
	cmd, err := remote.NewCommand(ctx, name+"-launch", &remote.CommandArgs{
		Connection: args.Host.connection(args.PrivateKey.ToStringOutput().ToStringPtrOutput(), nil),
		// A user other than root launches through passwordless sudo (checked at ssh_ready). The
		// command is a shell reading the launch on its standard input: in its arguments, any
		// local user of the host would read the secrets in /proc while it runs.
		Create:   pulumi.String(setup.ShellAsRoot(args.Host.User)),
		Stdin:    pulumi.ToSecret(args.LaunchCommand.ToStringOutput()).(pulumi.StringOutput).ToStringPtrOutput(),
		Triggers: pulumi.Array{args.LaunchID},
	}, pulumi.Parent(c), pulumi.AdditionalSecretOutputs([]string{"connection"}), pulumi.DependsOn(args.After))
	if err != nil {
		return nil, err
	}
	c.Launched = cmd.Stdout.ApplyT(strings.TrimSpace).(pulumi.StringOutput)
	c.LaunchID = args.LaunchID.ToStringOutput()
	if err := ctx.RegisterResourceOutputs(c, pulumi.Map{"launched": c.Launched, "launchId": c.LaunchID}); err != nil {
		return nil, err
	}
	return c, nil
}
