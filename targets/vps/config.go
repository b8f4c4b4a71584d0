package vps

import (
	_ "embed" // project.yaml
	"maps"
	"net"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ovh/go-ovh/ovh"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/clawdeploy/clawdeploy/ordering"
	"github.com/clawdeploy/clawdeploy/setup"
	"github.com/clawdeploy/clawdeploy/sshexec"
	"github.com/clawdeploy/clawdeploy/targets/stackconfig"
)

// ProjectYAML is the vps target's project definition: its name, runtime and typed config
// block. The driver builds it in; it has no main of its own, since the program runs inline.
//
//go:embed project.yaml
var ProjectYAML []byte

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
	// KeyVPSProvider is where the host comes from: ProviderNone (vps_host) or ProviderOVH.
	KeyVPSProvider = "vps_provider"

	KeyOVHEndpoint          = "ovh_endpoint"
	KeyOVHApplicationKey    = "ovh_application_key"
	KeyOVHApplicationSecret = "ovh_application_secret"
	KeyOVHConsumerKey       = "ovh_consumer_key"
	KeyOVHSubsidiary        = "ovh_subsidiary"
	KeyOVHPlanCode          = "ovh_plan_code"
	KeyOVHDatacenter        = "ovh_datacenter"
	KeyOVHOS                = "ovh_os"
	KeyOVHDuration          = "ovh_duration"
	KeyOVHDeliveryTimeout   = "ovh_delivery_timeout"

	// KeyOpenRouterProvisioningKey, when set, makes the deployment an OpenRouter API key of its
	// own (stage openrouter_key_created), deleted on destroy.
	KeyOpenRouterProvisioningKey = "openrouter_provisioning_key"
	KeyOpenRouterAPIBase         = "openrouter_api_base"
)

// DefaultOpenRouterAPIBase is OpenRouter's API.
const DefaultOpenRouterAPIBase = "https://openrouter.ai/api/v1"

// Keys lists every config key of the vps target, in the order project.yaml declares them.
var Keys = []string{
	KeyVPSHost, KeyVPSPort, KeyVPSUser, KeyVPSHostKey, KeyVPSAllowUnknownHostKey, KeyVPSSetupRoot,
	KeyVPSSSHPrivateKey, KeyVPSPassword, KeyVPSProvider, KeyOVHEndpoint, KeyOVHApplicationKey, KeyOVHApplicationSecret,
	KeyOVHConsumerKey, KeyOVHSubsidiary, KeyOVHPlanCode, KeyOVHDatacenter, KeyOVHOS, KeyOVHDuration, KeyOVHDeliveryTimeout,
	stackconfig.KeyOpenClawImage, KeyOpenRouterProvisioningKey, KeyOpenRouterAPIBase,
	stackconfig.KeyGatewayToken, stackconfig.KeyAnthropicAPIKey, stackconfig.KeyOpenAIAPIKey, stackconfig.KeyOpenRouterAPIKey, stackconfig.KeyGeminiAPIKey,
}

// Defaults of the vps keys.
const (
	DefaultPort               = 22
	DefaultUser               = "root"
	DefaultOVHEndpoint        = "ovh-eu"
	DefaultOVHSubsidiary      = "FR"
	DefaultOVHOS              = "Debian 12"
	DefaultOVHDuration        = "P1M"
	DefaultOVHDeliveryTimeout = 4 * time.Hour
)

// The providers of vps_provider.
const (
	ProviderNone = "none"
	ProviderOVH  = "ovh"
)

// ovhSubsidiaries are OVHcloud's subsidiaries (nichandle.OvhSubsidiaryEnum).
var ovhSubsidiaries = []string{"ASIA", "AU", "CA", "CZ", "DE", "ES", "EU", "FI", "FR", "GB", "IE", "IN", "IT", "LT", "MA", "NL",
	"PL", "PT", "QC", "SG", "SN", "TN", "US", "WE", "WS"}

// CredentialKeys are the secret keys that log in to the host: one of them is required.
var CredentialKeys = []string{KeyVPSSSHPrivateKey, KeyVPSPassword}

// Config is the validated configuration of one vps stack.
type Config struct {
	Stack string
	Host  string
	Port  int
	User  string
	// HostKey pins the host's key (authorized_keys form); empty only with AllowUnknownHostKey.
	HostKey             string
	AllowUnknownHostKey bool
	// SetupRoot is the directory of the setup protocol's files on the host.
	SetupRoot string
	// OpenClawImage is the gateway's image: openclaw_image, pinned to the digest the driver
	// resolved it to when it did (stackconfig.Reader.Image).
	OpenClawImage string
	// Credential is vps_ssh_private_key or vps_password, whichever is set (the key wins).
	PrivateKey, Password *stackconfig.Secret
	// Secrets are the gateway's secrets by config key, as for ec2-spot.
	Secrets map[string]stackconfig.Secret
	// OpenRouterProvisioningKey, when set, creates the deployment's OpenRouter key at
	// OpenRouterAPIBase.
	OpenRouterProvisioningKey *stackconfig.Secret
	OpenRouterAPIBase         string
	// Provider is vps_provider; with ProviderOVH, OVH is the order and DeliveryTimeout bounds
	// one wait for its delivery.
	Provider        string
	OVH             *ordering.OVHConfig
	DeliveryTimeout time.Duration
	// ovhSecrets are the OVH credentials as given, by key, for the check that they were set as
	// secrets; OVH holds their values.
	ovhSecrets map[string]stackconfig.Secret
}

// Ordered reports whether the host is ordered from a provider rather than given.
func (c *Config) Ordered() bool { return c.Provider != ProviderNone }

var (
	hostnamePattern = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$`)
	userPattern     = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`)
)

// Load reads and validates a vps stack's configuration, every problem at once, before any
// resource is registered.
func Load(ctx *pulumi.Context) (*Config, error) {
	r := stackconfig.NewReader(ctx)
	c := &Config{
		Stack:               ctx.Stack(),
		Host:                r.Str(KeyVPSHost, ""),
		Port:                r.Int(KeyVPSPort, DefaultPort),
		User:                r.Str(KeyVPSUser, DefaultUser),
		HostKey:             r.Str(KeyVPSHostKey, ""),
		AllowUnknownHostKey: r.Bool(KeyVPSAllowUnknownHostKey),
		SetupRoot:           r.Str(KeyVPSSetupRoot, setup.DefaultRoot),
		OpenClawImage:       r.Image(stackconfig.DefaultOpenClawImage),
		OpenRouterAPIBase:   r.Str(KeyOpenRouterAPIBase, DefaultOpenRouterAPIBase),
		Secrets:             r.GatewaySecrets(),
	}
	if s, ok := r.Secret(KeyOpenRouterProvisioningKey); ok {
		c.OpenRouterProvisioningKey = &s
	}
	if s, ok := r.Secret(KeyVPSSSHPrivateKey); ok {
		c.PrivateKey = &s
	}
	if s, ok := r.Secret(KeyVPSPassword); ok {
		c.Password = &s
	}
	c.Provider = r.Str(KeyVPSProvider, ProviderNone)
	if c.Provider == ProviderOVH {
		c.OVH = &ordering.OVHConfig{
			Endpoint:       r.Str(KeyOVHEndpoint, DefaultOVHEndpoint),
			ApplicationKey: r.Str(KeyOVHApplicationKey, ""),
			Subsidiary:     r.Str(KeyOVHSubsidiary, DefaultOVHSubsidiary),
			PlanCode:       r.Str(KeyOVHPlanCode, ""),
			Datacenter:     r.Str(KeyOVHDatacenter, ""),
			OS:             r.Str(KeyOVHOS, DefaultOVHOS),
			Duration:       r.Str(KeyOVHDuration, DefaultOVHDuration),
		}
		c.ovhSecrets = map[string]stackconfig.Secret{}
		for key, into := range map[string]*string{KeyOVHApplicationSecret: &c.OVH.ApplicationSecret, KeyOVHConsumerKey: &c.OVH.ConsumerKey} {
			if s, ok := r.Secret(key); ok {
				*into, c.ovhSecrets[key] = s.Reveal(), s
			}
		}
		c.DeliveryTimeout = r.Duration(KeyOVHDeliveryTimeout, DefaultOVHDeliveryTimeout)
	}
	if err := r.Checked(c.Stack, c.Validate()); err != nil {
		return nil, err
	}
	return c, nil
}

// Validate checks the values; it is pure.
func (c *Config) Validate() error {
	var fields []*stackconfig.FieldError
	bad := func(key, value, allowed string) {
		fields = append(fields, &stackconfig.FieldError{Key: key, Value: value, Allowed: allowed})
	}
	switch {
	case c.Provider != ProviderNone && c.Provider != ProviderOVH:
		bad(KeyVPSProvider, c.Provider, "none (the host given by vps_host) or ovh (ordered from OVHcloud)")
	case c.OVH != nil:
		fields = append(fields, c.validateOVH()...)
	}
	switch {
	case c.Host == "" && c.Ordered():
		// Set by clawdeploy once the ordered VPS is delivered.
	case c.Host == "":
		bad(KeyVPSHost, c.Host, "set to the host's address (pulumi config set vps_host 203.0.113.10), or set vps_provider to order one")
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
	case c.HostKey == "" && !c.AllowUnknownHostKey && !c.Ordered():
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
	fields = append(fields, stackconfig.CheckImage(c.OpenClawImage)...)
	switch {
	case c.PrivateKey == nil && c.Password == nil && c.Ordered():
		// clawdeploy makes the key the ordered VPS is rebuilt with.
	case c.PrivateKey == nil && c.Password == nil:
		fields = append(fields, &stackconfig.FieldError{Key: KeyVPSSSHPrivateKey, Redacted: true,
			Allowed: "set (or vps_password): the credential to log in to the host with, as a secret " +
				"(pulumi config set --secret vps_ssh_private_key < key)"})
	case c.PrivateKey != nil:
		if _, err := (sshexec.Target{Host: "x", PrivateKey: []byte(c.PrivateKey.Reveal()), AllowUnknownHostKey: true}).Signer(); err != nil {
			fields = append(fields, &stackconfig.FieldError{Key: KeyVPSSSHPrivateKey, Redacted: true,
				Allowed: "an unencrypted private key in OpenSSH or PEM form"})
		}
	}
	if u, err := url.Parse(c.OpenRouterAPIBase); err != nil || u.Host == "" || !allowedAPIScheme(u) {
		bad(KeyOpenRouterAPIBase, c.OpenRouterAPIBase, "an https URL like "+DefaultOpenRouterAPIBase+" (http only on a loopback address)")
	}
	if _, both := c.Secrets[stackconfig.KeyOpenRouterAPIKey]; both && c.OpenRouterProvisioningKey != nil {
		fields = append(fields, &stackconfig.FieldError{Key: KeyOpenRouterProvisioningKey, Redacted: true,
			Allowed: "unset when openrouter_api_key is set: the deployment either gets a key of its own or uses the one given"})
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
	maps.Copy(secrets, c.ovhSecrets)
	fields = append(fields, stackconfig.CheckSecrets(c.Stack, c.Secrets, secrets)...)
	if len(fields) > 0 {
		return &stackconfig.ValidationError{Stack: c.Stack, Fields: fields}
	}
	return nil
}

var (
	ovhApplicationKeyPattern = regexp.MustCompile(`^[A-Za-z0-9]{8,64}$`)
	ovhPlanCodePattern       = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,63}$`)
	ovhDatacenterPattern     = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]{1,19}$`)
	ovhOSPattern             = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9 ._()+-]{0,63}$`)
	ovhDurationPattern       = regexp.MustCompile(`^P(1|3|6|12)M$`)
)

// validateOVH checks the OVH keys; the API checks the rest (credentials, plan, stock).
func (c *Config) validateOVH() []*stackconfig.FieldError {
	var fields []*stackconfig.FieldError
	bad := func(key, value, allowed string) {
		fields = append(fields, &stackconfig.FieldError{Key: key, Value: value, Allowed: allowed})
	}
	o := c.OVH
	if _, named := ovh.Endpoints[o.Endpoint]; !named {
		if u, err := url.Parse(o.Endpoint); err != nil || u.Host == "" || !allowedAPIScheme(u) {
			bad(KeyOVHEndpoint, o.Endpoint, "ovh-eu, ovh-ca or ovh-us, or the API's https URL (http only on a loopback address)")
		}
	}
	if !ovhApplicationKeyPattern.MatchString(o.ApplicationKey) {
		bad(KeyOVHApplicationKey, o.ApplicationKey, "the application key of the OVHcloud API (letters and digits), from https://eu.api.ovh.com/createToken/")
	}
	for key, value := range map[string]string{KeyOVHApplicationSecret: o.ApplicationSecret, KeyOVHConsumerKey: o.ConsumerKey} {
		if value == "" {
			fields = append(fields, &stackconfig.FieldError{Key: key, Redacted: true,
				Allowed: "set, as a secret (clawdeploy up --secret " + key + "=…), from https://eu.api.ovh.com/createToken/"})
		}
	}
	if !slices.Contains(ovhSubsidiaries, o.Subsidiary) {
		bad(KeyOVHSubsidiary, o.Subsidiary, "one of "+strings.Join(ovhSubsidiaries, ", "))
	}
	if !ovhPlanCodePattern.MatchString(o.PlanCode) {
		bad(KeyOVHPlanCode, o.PlanCode, "a VPS plan code of the order API, like vps-2025-model1")
	}
	if !ovhDatacenterPattern.MatchString(o.Datacenter) {
		bad(KeyOVHDatacenter, o.Datacenter, "a datacenter code, like GRA, SBG, BHS or WAW")
	}
	if !ovhOSPattern.MatchString(o.OS) {
		bad(KeyOVHOS, o.OS, "an image name as OVHcloud gives it, like Debian 12 or Ubuntu 24.04")
	}
	if !ovhDurationPattern.MatchString(o.Duration) {
		bad(KeyOVHDuration, o.Duration, "P1M, P3M, P6M or P12M")
	}
	if c.DeliveryTimeout < time.Second || c.DeliveryTimeout > 72*time.Hour {
		bad(KeyOVHDeliveryTimeout, c.DeliveryTimeout.String(), "a duration from 1s to 72h, like 4h")
	}
	slices.SortFunc(fields, func(a, b *stackconfig.FieldError) int { return strings.Compare(a.Key, b.Key) })
	return fields
}

// allowedAPIScheme: https, or http to a loopback address (a local stand-in).
func allowedAPIScheme(u *url.URL) bool {
	return u.Scheme == "https" || u.Scheme == "http" && isLoopback(u.Hostname())
}

func isLoopback(host string) bool {
	ip := net.ParseIP(host)
	return host == "localhost" || ip != nil && ip.IsLoopback()
}

// CheckConfig validates a vps stack's configuration without an engine.
func CheckConfig(project, stack string, values map[string]string, secretKeys []string) error {
	_, err := ReadConfig(project, stack, values, secretKeys)
	return err
}

// ReadConfig is Load without an engine, on values (namespaced keys) with the keys in
// secretKeys marked secret.
func ReadConfig(project, stack string, values map[string]string, secretKeys []string) (*Config, error) {
	var cfg *Config
	err := stackconfig.WithoutEngine(project, stack, values, secretKeys, func(ctx *pulumi.Context) (err error) {
		cfg, err = Load(ctx)
		return err
	})
	return cfg, err
}
