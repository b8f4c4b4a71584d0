package vps

import (
	"fmt"
	"maps"
	"path"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/clawdeploy/clawdeploy/cloudinit"
	"github.com/clawdeploy/clawdeploy/components"
	"github.com/clawdeploy/clawdeploy/setup"
	"github.com/clawdeploy/clawdeploy/targets/stackconfig"
)

// Names of the vps components.
const (
	NameSSHKey     = "ssh-key"
	NameSSHAccess  = "ssh-access"
	NameVPSSetup   = "setup"
	NameOpenRouter = "openrouter"
	// NameGatewayToken makes the gateway's token when none is configured.
	NameGatewayToken = "gateway-token"
)

// UnorderedHost stands for an ordered VPS in a preview before its delivery.
const UnorderedHost = "vps-not-delivered-yet.invalid"

// host returns the component view of the host.
func (c *Config) host() components.Host {
	return components.Host{Address: c.Host, Port: c.Port, User: c.User, HostKey: c.HostKey, AllowUnknownHostKey: c.AllowUnknownHostKey}
}

// Host is what the vps program puts on the host besides the settings: the setup script, and
// where the files the launch writes go.
type Host struct {
	// Script is the setup script; nil means setup.Script.
	Script []byte
	// Root is put before the path of every file the launch writes outside the setup root (the
	// settings, the scripts, the unit, the secrets): empty on a real host; a test's temporary
	// directory, so that a test host's /etc is never written.
	Root string
}

// vpsLaunch is the launch of the setup script on the host: the settings, and the files a bare
// host needs, the gateway's secrets among them. extra are secrets made during the run (the
// deployment's OpenRouter key), by variable name. The launch holds secrets: it travels as one.
func vpsLaunch(c *Config, host Host, extra map[string]string) (setup.Launch, error) {
	settings, err := cloudinit.VPSSettings(cloudinit.VPSArgs{
		Stack: c.Stack, Image: c.OpenClawImage, OnboardAuthChoice: stackconfig.OnboardAuthChoice(c.Secrets),
	})
	if err != nil {
		return setup.Launch{}, err
	}
	secrets := map[string]string{}
	for key, s := range c.Secrets {
		secrets[stackconfig.SecretKeys[key]] = s.Reveal()
	}
	maps.Copy(secrets, extra)
	files, err := cloudinit.VPSFiles(secrets)
	if err != nil {
		return setup.Launch{}, err
	}
	return setup.Launch{
		Root:    c.SetupRoot,
		Script:  host.Script,
		EnvFile: path.Join("/", host.Root, cloudinit.EnvFile),
		Env:     []byte(settings),
		Files:   setup.Under(host.Root, files),
	}, nil
}

// Outputs are what the vps program exports.
type Outputs struct {
	Host, User, HostKey, SetupRoot, LaunchID pulumi.StringOutput
	Port                                     pulumi.IntOutput
	// PrivateKey is the deployment's own SSH key (a secret); PublicKey is authorized on the host.
	PrivateKey, PublicKey pulumi.StringOutput
	// Launched is what the launch printed.
	Launched pulumi.StringOutput
	// GatewayTunnel is the SSH port forwarding command that reaches the gateway.
	GatewayTunnel pulumi.StringOutput
	// GatewayToken is the gateway's token, configured or made, as a secret.
	GatewayToken pulumi.StringOutput
	// Image is the gateway's image the host runs: pinned to its digest once the driver pinned it.
	Image pulumi.StringOutput
}

// Program is the Pulumi program of an OpenClaw deployment on a VPS, with the setup script.
func Program(ctx *pulumi.Context) error { return ProgramWith(Host{})(ctx) }

// ProgramWith is Program with another script or file root: the tests' stand-ins.
func ProgramWith(host Host) pulumi.RunFunc {
	return func(ctx *pulumi.Context) error {
		out, err := Deploy(ctx, host)
		if err != nil {
			return err
		}
		ctx.Export("ssh_host", out.Host)
		ctx.Export("ssh_port", out.Port)
		ctx.Export("ssh_user", out.User)
		ctx.Export("ssh_host_key", out.HostKey)
		ctx.Export("ssh_private_key", out.PrivateKey)
		ctx.Export("ssh_public_key", out.PublicKey)
		ctx.Export("setup_root", out.SetupRoot)
		ctx.Export("launch_id", out.LaunchID)
		ctx.Export("launched", out.Launched)
		ctx.Export("gateway_tunnel", out.GatewayTunnel)
		ctx.Export("gateway_url", pulumi.Sprintf("http://127.0.0.1:%d/", cloudinit.GatewayPort))
		ctx.Export("gateway_token", out.GatewayToken)
		ctx.Export("openclaw_image", out.Image)
		return nil
	}
}

// Deploy registers the vps deployment: the deployment's key, its authorization on the host,
// and the detached launch of the setup script with the stack's settings and files.
func Deploy(ctx *pulumi.Context, host Host) (*Outputs, error) {
	cfg, err := Load(ctx)
	if err != nil {
		return nil, err
	}
	if cfg.Host == "" {
		// An ordered VPS not delivered yet: clawdeploy up orders it and sets vps_host before the
		// engine runs; a preview shows what would be made on it.
		if !ctx.DryRun() {
			return nil, fmt.Errorf("vps_host is not set: the VPS of vps_provider %s is ordered by `clawdeploy up --target vps`, "+
				"which sets vps_host once it is delivered, before the engine runs", cfg.Provider)
		}
		cfg.Host, cfg.AllowUnknownHostKey = UnorderedHost, true
	}
	key, err := components.NewSSHKey(ctx, NameSSHKey)
	if err != nil {
		return nil, err
	}
	var operatorKey, password pulumi.StringPtrInput
	switch {
	case cfg.PrivateKey != nil:
		operatorKey = cfg.PrivateKey.Output().ToStringPtrOutput()
	case cfg.Password != nil:
		password = cfg.Password.Output().ToStringPtrOutput()
	default:
		// An ordered VPS before its order (a preview): clawdeploy up makes the key it is rebuilt
		// with and sets it as vps_ssh_private_key.
		operatorKey = key.PrivateKey.ToStringPtrOutput()
	}
	access, err := components.NewSSHAccess(ctx, NameSSHAccess, &components.SSHAccessArgs{
		Host: cfg.host(), PrivateKey: operatorKey, Password: password, AuthorizedKey: key.PublicKey,
	})
	if err != nil {
		return nil, err
	}
	// The launch carries the settings and the secrets, made ones included: a gateway token when
	// none is configured, the deployment's own OpenRouter key with a provisioning key.
	made := pulumi.StringMap{}
	var token pulumi.StringOutput
	if given, ok := cfg.Secrets[stackconfig.KeyGatewayToken]; ok {
		token = given.Output()
	} else {
		gt, err := components.NewGatewayToken(ctx, NameGatewayToken)
		if err != nil {
			return nil, err
		}
		token = gt.Token
		made[stackconfig.SecretKeys[stackconfig.KeyGatewayToken]] = gt.Token
	}
	if cfg.OpenRouterProvisioningKey != nil {
		orKey, err := components.NewOpenRouterKey(ctx, NameOpenRouter, &components.OpenRouterKeyArgs{
			APIBase: cfg.OpenRouterAPIBase, ProvisioningKey: cfg.OpenRouterProvisioningKey.Output(),
			Name: key.PublicKey.ApplyT(func(pub string) string { return components.OpenRouterKeyName(cfg.Stack, pub) }).(pulumi.StringOutput),
		})
		if err != nil {
			return nil, err
		}
		made[stackconfig.SecretKeys[stackconfig.KeyOpenRouterAPIKey]] = orKey.Key
	}
	launch := made.ToStringMapOutput().ApplyT(func(extra map[string]string) (setup.Launch, error) {
		return vpsLaunch(cfg, host, extra)
	})
	vpsSetup, err := components.NewVPSSetup(ctx, NameVPSSetup, &components.VPSSetupArgs{
		Host:          cfg.host(),
		PrivateKey:    key.PrivateKey,
		LaunchCommand: pulumi.ToSecret(launch.ApplyT(func(l any) string { return l.(setup.Launch).Command() })).(pulumi.StringOutput),
		LaunchID:      launch.ApplyT(func(l any) string { return l.(setup.Launch).ID() }).(pulumi.StringOutput),
		After:         []pulumi.Resource{access.Authorization},
	})
	if err != nil {
		return nil, err
	}
	return &Outputs{
		GatewayToken: token,
		Image:        pulumi.String(cfg.OpenClawImage).ToStringOutput(),
		Host:         pulumi.String(cfg.Host).ToStringOutput(),
		Port:         pulumi.Int(cfg.Port).ToIntOutput(),
		User:         pulumi.String(cfg.User).ToStringOutput(),
		HostKey:      pulumi.String(cfg.HostKey).ToStringOutput(),
		SetupRoot:    pulumi.String(cfg.SetupRoot).ToStringOutput(),
		LaunchID:     vpsSetup.LaunchID,
		PrivateKey:   key.PrivateKey,
		PublicKey:    key.PublicKey,
		Launched:     vpsSetup.Launched,
		GatewayTunnel: pulumi.Sprintf("ssh -N -L %d:127.0.0.1:%d -p %d %s@%s",
			cloudinit.GatewayPort, cloudinit.GatewayPort, cfg.Port, cfg.User, cfg.Host),
	}, nil
}
