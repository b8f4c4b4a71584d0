package vps

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/workspace"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/clawdeploy/clawdeploy/components"
	"github.com/clawdeploy/clawdeploy/internal/enginetest"
	"github.com/clawdeploy/clawdeploy/internal/pulumitest"
	"github.com/clawdeploy/clawdeploy/ordering"
	"github.com/clawdeploy/clawdeploy/setup"
	"github.com/clawdeploy/clawdeploy/targets/stackconfig"
)

const (
	testHostKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
	// testOperatorKey is a throwaway ed25519 key made for this test.
	testOperatorKey = `-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW
QyNTUxOQAAACBrWPhK5ijsWSRxcr8Pm+NBbIP0A87OE/vKXg9uH3hoKAAAAJCCFUbqghVG
6gAAAAtzc2gtZWQyNTUxOQAAACBrWPhK5ijsWSRxcr8Pm+NBbIP0A87OE/vKXg9uH3hoKA
AAAEA3j8SoMaNeimgJjCrSU4wZ8Jy/ZYy9WC6qoFXsi3zLO2tY+ErmKOxZJHFyvw+b40Fs
g/QDzs4T+8peD24feGgoAAAADHRlc3RAdnBzLWtleQE=
-----END OPENSSH PRIVATE KEY-----
`
)

func validVPSConfig() map[string]string {
	return map[string]string{KeyVPSHost: "203.0.113.10", KeyVPSHostKey: testHostKey}
}

func loadVPS(t *testing.T, plain, secret map[string]string) (*Config, error) {
	t.Helper()
	var cfg *Config
	_, err := pulumitest.Run(func(ctx *pulumi.Context) error {
		c, err := Load(ctx)
		cfg = c
		return err
	}, pulumitest.WithStack("vps1"), pulumitest.WithConfig(plain), pulumitest.WithSecretConfig(secret))
	return cfg, err
}

func TestLoadVPSAppliesDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := loadVPS(t, validVPSConfig(), map[string]string{KeyVPSSSHPrivateKey: testOperatorKey})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Port != 22 || cfg.User != "root" || cfg.SetupRoot != "/root" || cfg.AllowUnknownHostKey || cfg.OpenClawImage != stackconfig.DefaultOpenClawImage {
		t.Errorf("defaults: %+v", cfg)
	}
}

// TestVPSConfigRejects runs bad vps configurations through Load: each is refused before any
// resource, with the key in the message.
func TestVPSConfigRejects(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		set    map[string]string // over validVPSConfig; "" deletes
		secret map[string]string // nil: the operator key, as a secret
		plain  map[string]string // secret keys passed in plain text
		key    string
	}{
		{name: "host missing", set: map[string]string{KeyVPSHost: ""}, key: KeyVPSHost},
		{name: "host with a space", set: map[string]string{KeyVPSHost: "vps 1"}, key: KeyVPSHost},
		{name: "host an option", set: map[string]string{KeyVPSHost: "-oProxyCommand=x"}, key: KeyVPSHost},
		{name: "host with a user", set: map[string]string{KeyVPSHost: "root@vps1"}, key: KeyVPSHost},
		{name: "port 0", set: map[string]string{KeyVPSPort: "0"}, key: KeyVPSPort},
		{name: "port too high", set: map[string]string{KeyVPSPort: "65536"}, key: KeyVPSPort},
		{name: "port not a number", set: map[string]string{KeyVPSPort: "ssh"}, key: KeyVPSPort},
		{name: "user with a space", set: map[string]string{KeyVPSUser: "a b"}, key: KeyVPSUser},
		{name: "user upper case", set: map[string]string{KeyVPSUser: "Root"}, key: KeyVPSUser},
		{name: "host key missing", set: map[string]string{KeyVPSHostKey: ""}, key: KeyVPSHostKey},
		{name: "host key garbage", set: map[string]string{KeyVPSHostKey: "ssh-ed25519 nope"}, key: KeyVPSHostKey},
		{name: "allow not a bool", set: map[string]string{KeyVPSAllowUnknownHostKey: "sure"}, key: KeyVPSAllowUnknownHostKey},
		{name: "setup root relative", set: map[string]string{KeyVPSSetupRoot: "root"}, key: KeyVPSSetupRoot},
		{name: "setup root unclean", set: map[string]string{KeyVPSSetupRoot: "/root/../etc"}, key: KeyVPSSetupRoot},
		{name: "image", set: map[string]string{stackconfig.KeyOpenClawImage: "ghcr.io/OpenClaw/openclaw"}, key: stackconfig.KeyOpenClawImage},
		{name: "no credential", secret: map[string]string{}, key: KeyVPSSSHPrivateKey},
		{name: "key not a key", secret: map[string]string{KeyVPSSSHPrivateKey: "hunter2"}, key: KeyVPSSSHPrivateKey},
		{name: "key in plain text", secret: map[string]string{}, plain: map[string]string{KeyVPSSSHPrivateKey: testOperatorKey}, key: KeyVPSSSHPrivateKey},
		{name: "password in plain text", secret: map[string]string{}, plain: map[string]string{KeyVPSPassword: "pw"}, key: KeyVPSPassword},
		{name: "openrouter base not https", set: map[string]string{KeyOpenRouterAPIBase: "http://openrouter.ai/api/v1"}, key: KeyOpenRouterAPIBase},
		{name: "openrouter base not a URL", set: map[string]string{KeyOpenRouterAPIBase: "openrouter"}, key: KeyOpenRouterAPIBase},
		{name: "openrouter provisioning and api key", secret: map[string]string{KeyVPSSSHPrivateKey: testOperatorKey,
			KeyOpenRouterProvisioningKey: "hunter2", stackconfig.KeyOpenRouterAPIKey: "hunter2"}, key: KeyOpenRouterProvisioningKey},
		{name: "provisioning key in plain text", plain: map[string]string{KeyOpenRouterProvisioningKey: "hunter2"}, key: KeyOpenRouterProvisioningKey},
		{name: "token in plain text", plain: map[string]string{stackconfig.KeyGatewayToken: "tok-plain-9"}, key: stackconfig.KeyGatewayToken},
		{name: "api key of two lines", secret: map[string]string{KeyVPSSSHPrivateKey: testOperatorKey,
			stackconfig.KeyAnthropicAPIKey: "hunter2\nsecond"}, key: stackconfig.KeyAnthropicAPIKey},
		{name: "provider unknown", set: map[string]string{KeyVPSProvider: "hetzner"}, key: KeyVPSProvider},
		{name: "ovh endpoint", set: ovhOrder(KeyOVHEndpoint, "ovh-mars"), secret: ovhSecrets(), key: KeyOVHEndpoint},
		{name: "ovh endpoint http", set: ovhOrder(KeyOVHEndpoint, "http://eu.api.ovh.com/1.0"), secret: ovhSecrets(), key: KeyOVHEndpoint},
		{name: "ovh application key missing", set: ovhOrder(KeyOVHApplicationKey, ""), secret: ovhSecrets(), key: KeyOVHApplicationKey},
		{name: "ovh application secret missing", set: ovhOrder(), secret: ovhSecrets(KeyOVHApplicationSecret), key: KeyOVHApplicationSecret},
		{name: "ovh consumer key missing", set: ovhOrder(), secret: ovhSecrets(KeyOVHConsumerKey), key: KeyOVHConsumerKey},
		{name: "ovh consumer key in plain text", set: ovhOrder(), secret: ovhSecrets(KeyOVHConsumerKey),
			plain: map[string]string{KeyOVHConsumerKey: "hunter2"}, key: KeyOVHConsumerKey},
		{name: "ovh subsidiary", set: ovhOrder(KeyOVHSubsidiary, "fr"), secret: ovhSecrets(), key: KeyOVHSubsidiary},
		{name: "ovh plan code missing", set: ovhOrder(KeyOVHPlanCode, ""), secret: ovhSecrets(), key: KeyOVHPlanCode},
		{name: "ovh plan code with a slash", set: ovhOrder(KeyOVHPlanCode, "vps/../me"), secret: ovhSecrets(), key: KeyOVHPlanCode},
		{name: "ovh datacenter missing", set: ovhOrder(KeyOVHDatacenter, ""), secret: ovhSecrets(), key: KeyOVHDatacenter},
		{name: "ovh os", set: ovhOrder(KeyOVHOS, "Debian 12; rm -rf /"), secret: ovhSecrets(), key: KeyOVHOS},
		{name: "ovh duration", set: ovhOrder(KeyOVHDuration, "1 month"), secret: ovhSecrets(), key: KeyOVHDuration},
		{name: "ovh delivery timeout not a duration", set: ovhOrder(KeyOVHDeliveryTimeout, "soon"), secret: ovhSecrets(), key: KeyOVHDeliveryTimeout},
		{name: "ovh delivery timeout too short", set: ovhOrder(KeyOVHDeliveryTimeout, "500ms"), secret: ovhSecrets(), key: KeyOVHDeliveryTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			plain := validVPSConfig()
			for k, v := range tc.set {
				if v == "" {
					delete(plain, k)
				} else {
					plain[k] = v
				}
			}
			maps.Copy(plain, tc.plain)
			secret := tc.secret
			if secret == nil {
				secret = map[string]string{KeyVPSSSHPrivateKey: testOperatorKey}
			}
			_, err := loadVPS(t, plain, secret)
			var verr *stackconfig.ValidationError
			if !errors.As(err, &verr) || !slices.Contains(verr.Keys(), tc.key) {
				t.Fatalf("error %v, want one naming %s", err, tc.key)
			}
			for _, s := range []string{testOperatorKey, "hunter2", "tok-plain-9"} {
				if strings.Contains(err.Error(), s) {
					t.Errorf("the message shows a secret value: %v", err)
				}
			}
		})
	}
}

// ovhOrder returns the settings of an order from OVHcloud with the given key changed ("" deletes it),
// over validVPSConfig, whose host it deletes.
func ovhOrder(keyValue ...string) map[string]string {
	set := map[string]string{KeyVPSHost: "", KeyVPSHostKey: "", KeyVPSProvider: ProviderOVH, KeyOVHApplicationKey: "ak1234567890",
		KeyOVHPlanCode: "vps-2025-model1", KeyOVHDatacenter: "GRA"}
	if len(keyValue) == 2 {
		set[keyValue[0]] = keyValue[1]
	}
	return set
}

// ovhSecrets are the OVH secrets, without those named.
func ovhSecrets(without ...string) map[string]string {
	s := map[string]string{KeyOVHApplicationSecret: "as-secret-1", KeyOVHConsumerKey: "ck-secret-1"}
	for _, k := range without {
		delete(s, k)
	}
	return s
}

// TestLoadVPSOrderedFromOVH: with vps_provider ovh, no host, host key or credential is needed
// (clawdeploy orders the host and makes its key), and the order's defaults apply.
func TestLoadVPSOrderedFromOVH(t *testing.T) {
	t.Parallel()
	cfg, err := loadVPS(t, map[string]string{KeyVPSProvider: ProviderOVH, KeyOVHApplicationKey: "ak1234567890",
		KeyOVHPlanCode: "vps-2025-model1", KeyOVHDatacenter: "GRA"}, ovhSecrets())
	if err != nil {
		t.Fatal(err)
	}
	want := ordering.OVHConfig{Endpoint: "ovh-eu", ApplicationKey: "ak1234567890", ApplicationSecret: "as-secret-1", ConsumerKey: "ck-secret-1",
		Subsidiary: "FR", PlanCode: "vps-2025-model1", Datacenter: "GRA", OS: "Debian 12", Duration: "P1M"}
	if !cfg.Ordered() || *cfg.OVH != want || cfg.DeliveryTimeout != 4*time.Hour {
		t.Errorf("loaded %+v, %+v", cfg, cfg.OVH)
	}
	if _, leaked := cfg.Secrets[KeyOVHConsumerKey]; leaked {
		t.Error("the OVH credentials are among the gateway's secrets, which go to the host")
	}
}

// TestVPSProgramBeforeTheOrder: an up of an ordered VPS without vps_host (which clawdeploy sets
// once the VPS is delivered, before the engine runs) is refused, naming the key. (The preview
// before the order runs on the real engine, in automation's TestVPSOrderedFromOVH: the mocks
// cannot carry the unknown key a preview connects with.)
func TestVPSProgramBeforeTheOrder(t *testing.T) {
	t.Parallel()
	plain := ovhOrder()
	delete(plain, KeyVPSHost)
	delete(plain, KeyVPSHostKey)
	_, err := pulumitest.Run(Program, pulumitest.WithStack("vps1"), pulumitest.WithConfig(plain), pulumitest.WithSecretConfig(ovhSecrets()))
	if err == nil || !strings.Contains(err.Error(), "vps_host is not set") {
		t.Errorf("up without the ordered host: %v", err)
	}
}

func TestVPSHostKeyMayBeUnpinnedOnlyExplicitly(t *testing.T) {
	t.Parallel()
	plain := validVPSConfig()
	delete(plain, KeyVPSHostKey)
	plain[KeyVPSAllowUnknownHostKey] = "true"
	if _, err := loadVPS(t, plain, map[string]string{KeyVPSPassword: "pw"}); err != nil {
		t.Errorf("allowed unknown host key with a password: %v", err)
	}
}

func TestVPSProjectYAMLDeclaresEveryKey(t *testing.T) {
	t.Parallel()
	proj, err := workspace.LoadProject(filepath.Join(enginetest.RepoRoot(t), "targets", "vps", "project.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var declared []string
	for key, typ := range proj.Config {
		declared = append(declared, key)
		if typ.Description == "" {
			t.Errorf("%s has no description", key)
		}
	}
	if want := slices.Sorted(slices.Values(Keys)); !slices.Equal(slices.Sorted(slices.Values(declared)), want) {
		t.Errorf("project.yaml declares %v\nthe program reads %v", slices.Sorted(slices.Values(declared)), want)
	}
	for key, want := range map[string]string{KeyVPSPort: "22", KeyVPSUser: DefaultUser, KeyVPSSetupRoot: setup.DefaultRoot, stackconfig.KeyOpenClawImage: stackconfig.DefaultOpenClawImage, KeyOpenRouterAPIBase: DefaultOpenRouterAPIBase,
		KeyVPSProvider: ProviderNone, KeyOVHEndpoint: DefaultOVHEndpoint, KeyOVHSubsidiary: DefaultOVHSubsidiary, KeyOVHOS: DefaultOVHOS,
		KeyOVHDuration: DefaultOVHDuration, KeyOVHDeliveryTimeout: "4h"} {
		if got := fmt.Sprint(proj.Config[key].Default); got != want {
			t.Errorf("%s defaults to %s in project.yaml, %s in Go", key, got, want)
		}
	}
	// vps_host is required by Validate for a host the user brings; an ordered VPS's is set by
	// clawdeploy, so the engine must accept a stack without one.
	if proj.Config[KeyVPSHost].Default != "" {
		t.Errorf("vps_host defaults to %v, want empty", proj.Config[KeyVPSHost].Default)
	}
}

// TestVPSProgram checks the vps resource graph: the deployment's key, its authorization with
// the operator's credential, then the launch with the deployment's key, the host key pinned
// everywhere, the settings and their secrets only inside the (secret) launch command.
func TestVPSProgram(t *testing.T) {
	t.Parallel()
	script := []byte("#!/bin/bash\necho test script\n")
	m, err := pulumitest.Run(ProgramWith(Host{Script: script}), pulumitest.WithStack("vps1"),
		pulumitest.WithConfig(map[string]string{KeyVPSHost: "203.0.113.10", KeyVPSHostKey: testHostKey, KeyVPSSetupRoot: "/srv/oc"}),
		pulumitest.WithSecretConfig(map[string]string{KeyVPSSSHPrivateKey: testOperatorKey, stackconfig.KeyGatewayToken: "gw-secret-1"}))
	if err != nil {
		t.Fatal(err)
	}
	key, ok := m.One("tls:index/privateKey:PrivateKey", NameSSHKey+"-key")
	if !ok || key.String("algorithm") != "ED25519" {
		t.Fatalf("no ed25519 key: %+v", key)
	}
	authorize, ok := m.One("command:remote:Command", NameSSHAccess+"-authorize")
	if !ok {
		t.Fatal("no authorize command")
	}
	launch, ok := m.One("command:remote:Command", NameVPSSetup+"-launch")
	if !ok {
		t.Fatal("no launch command")
	}
	for name, r := range map[string]pulumitest.Resource{"authorize": authorize, "launch": launch} {
		if got := r.String("connection.hostKey"); got != testHostKey {
			t.Errorf("%s: host key %q, want it pinned", name, got)
		}
		if got := r.String("connection.host"); got != "203.0.113.10" {
			t.Errorf("%s: host %q", name, got)
		}
	}
	if got := authorize.String("connection.privateKey"); got != testOperatorKey {
		t.Errorf("the authorization does not log in with the operator's key")
	}
	// The launch logs in with the deployment's key (unknown under mocks: it comes from the key pair).
	if launch.String("connection.privateKey") == testOperatorKey || !slices.Contains(launch.Request.GetDependencies(), key.URN) {
		t.Errorf("the launch does not log in with the deployment's own key")
	}
	// The session runs a shell that reads the launch on its standard input: the launch, which
	// carries the secrets, is in no command line on the host.
	if got := launch.String("create"); got != "bash -s" {
		t.Errorf("the launch's session runs %q, want a shell reading its standard input", got)
	}
	create := launch.String("stdin")
	if !strings.Contains(create, "root='/srv/oc'") || !strings.Contains(create, "setsid nohup bash") {
		t.Errorf("the launch command is not the protocol's:\n%s", create)
	}
	// The launch's identity covers the script and the settings: it is not the script's hash.
	_, rest, _ := strings.Cut(create, "\nhash=")
	id, _, _ := strings.Cut(rest, "\n")
	if len(id) != 64 || id == setup.Hash(script) || !strings.Contains(create, "\nsum="+setup.Hash(script)) {
		t.Errorf("launch id %q, script hash %s", id, setup.Hash(script))
	}
	if !strings.Contains(fmt.Sprint(launch.Inputs["triggers"]), id) {
		t.Errorf("triggers %v do not carry the launch id", launch.Inputs["triggers"])
	}
	if !launch.Inputs["stdin"].IsSecret() {
		t.Errorf("the launch command carries the settings' secrets but is not a secret")
	}
	if strings.Contains(create, "gw-secret-1") {
		t.Errorf("the gateway token is in the launch command in clear; it must travel base64-encoded in the settings")
	}
	if !slices.Contains(launch.Request.GetDependencies(), authorize.URN) {
		t.Errorf("the launch does not wait for the key's authorization: %v", launch.Request.GetDependencies())
	}
	// What a bare host needs arrives with the launch, at the paths the units and scripts use.
	settings := launchedFile(t, create, "/etc/openclaw/openclaw.env")
	if !strings.Contains(settings, "\nOPENCLAW_TARGET=vps\n") || strings.Contains(settings, "gw-secret-1") {
		t.Errorf("settings on the host:\n%s", settings)
	}
	if !strings.Contains(create, "OPENCLAW_ENV_FILE='/etc/openclaw/openclaw.env' setsid") {
		t.Errorf("the script is not pointed at the settings")
	}
	if got := launchedFile(t, create, "/etc/openclaw/secrets.env"); got != "OPENCLAW_GATEWAY_TOKEN=gw-secret-1\n" {
		t.Errorf("secrets file %q", got)
	}
	if !strings.Contains(create, "chmod 0600 '/etc/openclaw/secrets.env'.tmp") {
		t.Errorf("the secrets file is not written 0600")
	}
	unit := launchedFile(t, create, "/etc/systemd/system/openclaw.service")
	if !strings.Contains(unit, "ExecStartPre=/usr/local/libexec/openclaw/openclaw-start.sh") || strings.Contains(unit, "openclaw-volume") {
		t.Errorf("unit on the host:\n%s", unit)
	}
	launchedFile(t, create, "/usr/local/libexec/openclaw/openclaw-secrets.sh")
	// The command is one argument of the host's `bash -c`: Linux takes at most 128 KiB there.
	if len(create) > 64<<10 {
		t.Errorf("the launch command is %d bytes; keep it well under 128 KiB", len(create))
	}
}

// launchedFile returns the content the launch command writes to path.
func launchedFile(t *testing.T, launch, path string) string {
	t.Helper()
	m := regexp.MustCompile(`printf '%s' '([A-Za-z0-9+/=]*)' \| base64 -d > '` + regexp.QuoteMeta(path) + `'\.tmp`).FindStringSubmatch(launch)
	if m == nil {
		t.Fatalf("the launch does not write %s", path)
	}
	b, err := base64.StdEncoding.DecodeString(m[1])
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestVPSProgramWithOpenRouterKey: a provisioning key makes an OpenRouter key of the deployment's
// own, whose value reaches the settings inside the (secret) launch command and nowhere else.
func TestVPSProgramWithOpenRouterKey(t *testing.T) {
	t.Parallel()
	created := `{"data":{"hash":"h1","name":"openclaw-vps1"},"key":"sk-or-v1-own"}`
	m, err := pulumitest.Run(ProgramWith(Host{Script: []byte("#!/bin/bash\n")}), pulumitest.WithStack("vps1"),
		pulumitest.WithConfig(map[string]string{KeyVPSHost: "203.0.113.10", KeyVPSHostKey: testHostKey}),
		pulumitest.WithSecretConfig(map[string]string{KeyVPSSSHPrivateKey: testOperatorKey, KeyOpenRouterProvisioningKey: "prov-1"}),
		pulumitest.WithOutputs("command:local:Command", func(string, resource.PropertyMap) resource.PropertyMap {
			return resource.PropertyMap{"stdout": resource.NewProperty(created)}
		}))
	if err != nil {
		t.Fatal(err)
	}
	key, ok := m.One("command:local:Command", NameOpenRouter+"-key")
	if !ok {
		t.Fatal("no OpenRouter key command")
	}
	if key.String("create") != components.OpenRouterCreateKeyCommand || key.String("delete") != components.OpenRouterDeleteKeyCommand {
		t.Errorf("key commands: %q / %q", key.String("create"), key.String("delete"))
	}
	if !key.Inputs["environment"].ObjectValue()["OPENROUTER_PROVISIONING_KEY"].IsSecret() ||
		strings.Contains(key.String("create"), "prov-1") {
		t.Errorf("the provisioning key is not kept secret")
	}
	if !regexp.MustCompile(`^openclaw-vps1-[0-9a-f]{12}$`).MatchString(key.String("environment.OPENROUTER_KEY_NAME")) ||
		key.String("environment.OPENROUTER_API_BASE") != DefaultOpenRouterAPIBase {
		t.Errorf("environment %v", key.Inputs["environment"])
	}
	launch, _ := m.One("command:remote:Command", NameVPSSetup+"-launch")
	if got := launchedFile(t, launch.String("stdin"), "/etc/openclaw/secrets.env"); !strings.HasSuffix(got, "\nOPENROUTER_API_KEY=sk-or-v1-own\n") {
		t.Errorf("the launch does not carry the deployment's key: secrets file %q", got)
	}
	if !launch.Inputs["stdin"].IsSecret() {
		t.Errorf("the launch command is not a secret")
	}
}

// TestVPSProgramMakesAGatewayToken: without gateway_token the program makes one (once, kept in
// the state as a secret), puts it in the host's secrets file and exports it; with gateway_token
// it makes none.
func TestVPSProgramMakesAGatewayToken(t *testing.T) {
	t.Parallel()
	var exported string
	program := func(ctx *pulumi.Context) error {
		out, err := Deploy(ctx, Host{Script: []byte("#!/bin/bash\n")})
		if err != nil {
			return err
		}
		ctx.Export("token", out.GatewayToken.ApplyT(func(v string) string { exported = v; return v }))
		return nil
	}
	seed := "-----BEGIN OPENSSH PRIVATE KEY-----\nseed-1\n"
	sum := sha256.Sum256([]byte(seed))
	want := hex.EncodeToString(sum[:])
	m, err := pulumitest.Run(program, pulumitest.WithStack("vps1"),
		pulumitest.WithConfig(map[string]string{KeyVPSHost: "203.0.113.10", KeyVPSHostKey: testHostKey}),
		pulumitest.WithSecretConfig(map[string]string{KeyVPSSSHPrivateKey: testOperatorKey}),
		pulumitest.WithOutputs("tls:index/privateKey:PrivateKey", func(name string, _ resource.PropertyMap) resource.PropertyMap {
			if name != NameGatewayToken+"-seed" {
				return nil
			}
			return resource.PropertyMap{"privateKeyOpenssh": resource.NewProperty(seed)}
		}))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := m.One(components.TypeGatewayToken, NameGatewayToken); !ok {
		t.Fatal("no gateway token component")
	}
	if exported != want {
		t.Errorf("exported token %q, want %q", exported, want)
	}
	launch, _ := m.One("command:remote:Command", NameVPSSetup+"-launch")
	if got := launchedFile(t, launch.String("stdin"), "/etc/openclaw/secrets.env"); got != "OPENCLAW_GATEWAY_TOKEN="+want+"\n" {
		t.Errorf("secrets file %q", got)
	}

	m, err = pulumitest.Run(ProgramWith(Host{}), pulumitest.WithStack("vps1"),
		pulumitest.WithConfig(map[string]string{KeyVPSHost: "203.0.113.10", KeyVPSHostKey: testHostKey}),
		pulumitest.WithSecretConfig(map[string]string{KeyVPSSSHPrivateKey: testOperatorKey, stackconfig.KeyGatewayToken: "gw-given"}))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.OfType(components.TypeGatewayToken)) != 0 {
		t.Errorf("a token was made although gateway_token is configured")
	}
}
