package infra

import (
	"maps"
	"net"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/config"

	"github.com/clawdeploy/clawdeploy/cloudinit"
	"github.com/clawdeploy/clawdeploy/components"
	"github.com/clawdeploy/clawdeploy/setup"
	"github.com/clawdeploy/clawdeploy/sshexec"
)

// Config keys of the vps target.
const (
	KeyVPSHost                = "vps_host"
	KeyVPSPort                = "vps_port"
	KeyVPSUser                = "vps_user"
	KeyVPSHostKey             = "vps_host_key"
	KeyVPSAllowUnknownHostKey = "vps_allow_unknown_host_key"
	KeyVPSSetupRoot           = "vps_setup_root"
	KeyVPSSSHPrivateKey       = "vps_ssh_private_key"
	KeyVPSPassword            = "vps_password"

	// KeyOpenRouterProvisioningKey, when set, makes the deployment an OpenRouter API key of its
	// own (stage openrouter_key_created), deleted on destroy.
	KeyOpenRouterProvisioningKey = "openrouter_provisioning_key"
	KeyOpenRouterAPIBase         = "openrouter_api_base"
)

// DefaultOpenRouterAPIBase is OpenRouter's API.
const DefaultOpenRouterAPIBase = "https://openrouter.ai/api/v1"

// VPSKeys lists every config key of the vps target, in the order vps/Pulumi.yaml declares them.
var VPSKeys = []string{
	KeyVPSHost, KeyVPSPort, KeyVPSUser, KeyVPSHostKey, KeyVPSAllowUnknownHostKey, KeyVPSSetupRoot,
	KeyVPSSSHPrivateKey, KeyVPSPassword, KeyOpenClawImage, KeyOpenRouterProvisioningKey, KeyOpenRouterAPIBase,
	KeyGatewayToken, KeyAnthropicAPIKey, KeyOpenAIAPIKey, KeyOpenRouterAPIKey, KeyGeminiAPIKey,
}

// Defaults of the vps keys.
const (
	DefaultVPSPort = 22
	DefaultVPSUser = "root"
)

// VPSCredentialKeys are the secret keys that log in to the host: one of them is required.
var VPSCredentialKeys = []string{KeyVPSSSHPrivateKey, KeyVPSPassword}

// Names of the vps components.
const (
	NameSSHKey     = "ssh-key"
	NameSSHAccess  = "ssh-access"
	NameVPSSetup   = "setup"
	NameOpenRouter = "openrouter"
	// NameGatewayToken makes the gateway's token when none is configured.
	NameGatewayToken = "gateway-token"
)

// VPSConfig is the validated configuration of one vps stack.
type VPSConfig struct {
	Stack string
	Host  string
	Port  int
	User  string
	// HostKey pins the host's key (authorized_keys form); empty only with AllowUnknownHostKey.
	HostKey             string
	AllowUnknownHostKey bool
	// SetupRoot is the directory of the setup protocol's files on the host.
	SetupRoot     string
	OpenClawImage string
	// Credential is vps_ssh_private_key or vps_password, whichever is set (the key wins).
	PrivateKey, Password *Secret
	// Secrets are the gateway's secrets by config key, as for ec2-spot.
	Secrets map[string]Secret
	// OpenRouterProvisioningKey, when set, creates the deployment's OpenRouter key at
	// OpenRouterAPIBase.
	OpenRouterProvisioningKey *Secret
	OpenRouterAPIBase         string
}

var (
	hostnamePattern = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$`)
	userPattern     = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`)
)

// LoadVPS reads and validates a vps stack's configuration, every problem at once, before any
// resource is registered.
func LoadVPS(ctx *pulumi.Context) (*VPSConfig, error) {
	r := reader{conf: config.New(ctx, ""), ctx: ctx}
	c := &VPSConfig{
		Stack:               ctx.Stack(),
		Host:                r.str(KeyVPSHost, ""),
		Port:                r.integer(KeyVPSPort, DefaultVPSPort),
		User:                r.str(KeyVPSUser, DefaultVPSUser),
		HostKey:             r.str(KeyVPSHostKey, ""),
		AllowUnknownHostKey: r.boolean(KeyVPSAllowUnknownHostKey),
		SetupRoot:           r.str(KeyVPSSetupRoot, setup.DefaultRoot),
		OpenClawImage:       r.str(KeyOpenClawImage, DefaultOpenClawImage),
		OpenRouterAPIBase:   r.str(KeyOpenRouterAPIBase, DefaultOpenRouterAPIBase),
		Secrets:             map[string]Secret{},
	}
	if s, ok := r.secret(KeyOpenRouterProvisioningKey); ok {
		c.OpenRouterProvisioningKey = &s
	}
	if s, ok := r.secret(KeyVPSSSHPrivateKey); ok {
		c.PrivateKey = &s
	}
	if s, ok := r.secret(KeyVPSPassword); ok {
		c.Password = &s
	}
	r.gatewaySecrets(c.Secrets)
	if err := r.validated(c.Stack, c.Validate()); err != nil {
		return nil, err
	}
	return c, nil
}

func (r *reader) boolean(key string) bool {
	v, ok := r.raw(key)
	if !ok {
		return false
	}
	b, err := strconv.ParseBool(strings.TrimSpace(v))
	if err != nil {
		r.errs = append(r.errs, &FieldError{Key: key, Value: v, Allowed: "true or false"})
	}
	return b
}

// Validate checks the values; it is pure.
func (c *VPSConfig) Validate() error {
	var fields []*FieldError
	bad := func(key, value, allowed string) {
		fields = append(fields, &FieldError{Key: key, Value: value, Allowed: allowed})
	}
	switch {
	case c.Host == "":
		bad(KeyVPSHost, c.Host, "set to the host's address (pulumi config set vps_host 203.0.113.10)")
	case net.ParseIP(c.Host) == nil && (len(c.Host) > 253 || !hostnamePattern.MatchString(c.Host)):
		bad(KeyVPSHost, c.Host, "an IP address or a host name like vps1.example.com")
	}
	if c.Port < 1 || c.Port > 65535 {
		bad(KeyVPSPort, strconv.Itoa(c.Port), "a TCP port between 1 and 65535")
	}
	if !userPattern.MatchString(c.User) {
		bad(KeyVPSUser, c.User, "a user name like root or ubuntu")
	}
	switch {
	case c.HostKey == "" && !c.AllowUnknownHostKey:
		bad(KeyVPSHostKey, c.HostKey, "the host's public key, like the line of `ssh-keyscan -t ed25519 <host>` after the host name, "+
			"or set vps_allow_unknown_host_key to true to trust whatever key the host presents")
	case c.HostKey != "":
		if _, err := sshexec.ParseHostKey(c.HostKey); err != nil {
			bad(KeyVPSHostKey, c.HostKey, "a public key in authorized_keys form, like ssh-ed25519 AAAA…")
		}
	}
	if !path.IsAbs(c.SetupRoot) || path.Clean(c.SetupRoot) != c.SetupRoot {
		bad(KeyVPSSetupRoot, c.SetupRoot, "an absolute, clean directory path like /root")
	}
	if len(c.OpenClawImage) > 255 || !imagePattern.MatchString(c.OpenClawImage) {
		bad(KeyOpenClawImage, c.OpenClawImage, "a container image reference like ghcr.io/openclaw/openclaw:2026.2.26")
	}
	switch {
	case c.PrivateKey == nil && c.Password == nil:
		fields = append(fields, &FieldError{Key: KeyVPSSSHPrivateKey, Redacted: true,
			Allowed: "set (or vps_password): the credential to log in to the host with, as a secret " +
				"(pulumi config set --secret vps_ssh_private_key < key)"})
	case c.PrivateKey != nil:
		if _, err := (sshexec.Target{Host: "x", PrivateKey: []byte(c.PrivateKey.Reveal()), AllowUnknownHostKey: true}).Signer(); err != nil {
			fields = append(fields, &FieldError{Key: KeyVPSSSHPrivateKey, Redacted: true,
				Allowed: "an unencrypted private key in OpenSSH or PEM form"})
		}
	}
	if u, err := url.Parse(c.OpenRouterAPIBase); err != nil || u.Host == "" || !allowedAPIScheme(u) {
		bad(KeyOpenRouterAPIBase, c.OpenRouterAPIBase, "an https URL like "+DefaultOpenRouterAPIBase+" (http only on a loopback address)")
	}
	if _, both := c.Secrets[KeyOpenRouterAPIKey]; both && c.OpenRouterProvisioningKey != nil {
		fields = append(fields, &FieldError{Key: KeyOpenRouterProvisioningKey, Redacted: true,
			Allowed: "unset when openrouter_api_key is set: the deployment either gets a key of its own or uses the one given"})
	}
	for _, key := range slices.Sorted(maps.Keys(c.Secrets)) {
		if strings.ContainsAny(c.Secrets[key].Reveal(), "\n\r\x00") {
			fields = append(fields, &FieldError{Key: key, Redacted: true,
				Allowed: "one line: the host keeps each secret as a KEY=value line"})
		}
	}
	secrets := maps.Clone(c.Secrets)
	if c.OpenRouterProvisioningKey != nil {
		secrets[KeyOpenRouterProvisioningKey] = *c.OpenRouterProvisioningKey
	}
	if c.PrivateKey != nil {
		secrets[KeyVPSSSHPrivateKey] = *c.PrivateKey
	}
	if c.Password != nil {
		secrets[KeyVPSPassword] = *c.Password
	}
	fields = append(fields, plainSecrets(c.Stack, secrets)...)
	if len(fields) > 0 {
		return &ValidationError{Stack: c.Stack, Fields: fields}
	}
	return nil
}

// allowedAPIScheme: https, or http to a loopback address (a local stand-in).
func allowedAPIScheme(u *url.URL) bool {
	return u.Scheme == "https" || u.Scheme == "http" && isLoopback(u.Hostname())
}

func isLoopback(host string) bool {
	ip := net.ParseIP(host)
	return host == "localhost" || ip != nil && ip.IsLoopback()
}

// host returns the component view of the host.
func (c *VPSConfig) host() components.Host {
	return components.Host{Address: c.Host, Port: c.Port, User: c.User, HostKey: c.HostKey, AllowUnknownHostKey: c.AllowUnknownHostKey}
}

// VPSHost is what the vps program puts on the host besides the settings: the setup script, and
// where the files the launch writes go.
type VPSHost struct {
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
func vpsLaunch(c *VPSConfig, host VPSHost, extra map[string]string) (setup.Launch, error) {
	settings, err := cloudinit.VPSSettings(cloudinit.VPSArgs{
		Stack: c.Stack, Image: c.OpenClawImage, OnboardAuthChoice: onboardAuthChoice(c.Secrets),
	})
	if err != nil {
		return setup.Launch{}, err
	}
	secrets := map[string]string{}
	for key, s := range c.Secrets {
		secrets[SecretKeys[key]] = s.Reveal()
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

// VPSOutputs are what the vps program exports.
type VPSOutputs struct {
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
}

// VPSProgram is the Pulumi program of an OpenClaw deployment on a VPS, with the setup script.
func VPSProgram(ctx *pulumi.Context) error { return VPSProgramWith(VPSHost{})(ctx) }

// VPSProgramWith is VPSProgram with another script or file root: the tests' stand-ins.
func VPSProgramWith(host VPSHost) pulumi.RunFunc {
	return func(ctx *pulumi.Context) error {
		out, err := DeployVPS(ctx, host)
		if err != nil {
			return err
		}
		ctx.Export("sshHost", out.Host)
		ctx.Export("sshPort", out.Port)
		ctx.Export("sshUser", out.User)
		ctx.Export("sshHostKey", out.HostKey)
		ctx.Export("sshPrivateKey", out.PrivateKey)
		ctx.Export("sshPublicKey", out.PublicKey)
		ctx.Export("setupRoot", out.SetupRoot)
		ctx.Export("launchId", out.LaunchID)
		ctx.Export("launched", out.Launched)
		ctx.Export("gatewayTunnel", out.GatewayTunnel)
		ctx.Export("gatewayUrl", pulumi.Sprintf("http://127.0.0.1:18789/"))
		ctx.Export("gatewayToken", out.GatewayToken)
		return nil
	}
}

// DeployVPS registers the vps deployment: the deployment's key, its authorization on the host,
// and the detached launch of the setup script with the stack's settings and files.
func DeployVPS(ctx *pulumi.Context, host VPSHost) (*VPSOutputs, error) {
	cfg, err := LoadVPS(ctx)
	if err != nil {
		return nil, err
	}
	key, err := components.NewSSHKey(ctx, NameSSHKey)
	if err != nil {
		return nil, err
	}
	var operatorKey, password pulumi.StringPtrInput
	if cfg.PrivateKey != nil {
		operatorKey = cfg.PrivateKey.Output().ToStringPtrOutput()
	} else {
		password = cfg.Password.Output().ToStringPtrOutput()
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
	if given, ok := cfg.Secrets[KeyGatewayToken]; ok {
		token = given.Output()
	} else {
		gt, err := components.NewGatewayToken(ctx, NameGatewayToken)
		if err != nil {
			return nil, err
		}
		token = gt.Token
		made[SecretKeys[KeyGatewayToken]] = gt.Token
	}
	if cfg.OpenRouterProvisioningKey != nil {
		orKey, err := components.NewOpenRouterKey(ctx, NameOpenRouter, &components.OpenRouterKeyArgs{
			APIBase: cfg.OpenRouterAPIBase, ProvisioningKey: cfg.OpenRouterProvisioningKey.Output(),
			Name: key.PublicKey.ApplyT(func(pub string) string { return components.OpenRouterKeyName(cfg.Stack, pub) }).(pulumi.StringOutput),
		})
		if err != nil {
			return nil, err
		}
		made[SecretKeys[KeyOpenRouterAPIKey]] = orKey.Key
	}
	launch := made.ToStringMapOutput().ApplyT(func(extra map[string]string) (setup.Launch, error) {
		return vpsLaunch(cfg, host, extra)
	})
	vpsSetup, err := components.NewVPSSetup(ctx, NameVPSSetup, &components.VPSSetupArgs{
		Host:          cfg.host(),
		PrivateKey:    key.PrivateKey,
		LaunchCommand: pulumi.ToSecret(launch.ApplyT(func(l any) string { return l.(setup.Launch).Command() })).(pulumi.StringOutput),
		LaunchID:      launch.ApplyT(func(l any) string { return l.(setup.Launch).ID() }).(pulumi.StringOutput),
		After:         []pulumi.Resource{access},
	})
	if err != nil {
		return nil, err
	}
	return &VPSOutputs{
		GatewayToken: token,
		Host:         pulumi.String(cfg.Host).ToStringOutput(),
		Port:         pulumi.Int(cfg.Port).ToIntOutput(),
		User:         pulumi.String(cfg.User).ToStringOutput(),
		HostKey:      pulumi.String(cfg.HostKey).ToStringOutput(),
		SetupRoot:    pulumi.String(cfg.SetupRoot).ToStringOutput(),
		LaunchID:     vpsSetup.LaunchID,
		PrivateKey:   key.PrivateKey,
		PublicKey:    key.PublicKey,
		Launched:     vpsSetup.Launched,
		GatewayTunnel: pulumi.Sprintf("ssh -N -L 18789:127.0.0.1:18789 -p %d %s@%s",
			cfg.Port, cfg.User, cfg.Host),
	}, nil
}

// CheckVPSConfig validates a vps stack's configuration without an engine.
func CheckVPSConfig(project, stack string, values map[string]string, secretKeys []string) error {
	return withoutEngine(project, stack, values, secretKeys, func(ctx *pulumi.Context) error {
		_, err := LoadVPS(ctx)
		return err
	})
}
