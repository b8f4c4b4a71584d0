package stackconfig_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/clawdeploy/clawdeploy/internal/openclaw"
	"github.com/clawdeploy/clawdeploy/targets/stackconfig"
)

func TestParseList(t *testing.T) {
	t.Parallel()
	for in, want := range map[string][]string{
		"t4g.small":                     {"t4g.small"},
		" t4g.small , t4g.medium,, ":    {"t4g.small", "t4g.medium"},
		`["t4g.small", " t4g.medium "]`: {"t4g.small", "t4g.medium"},
		"":                              nil,
	} {
		if got, err := stackconfig.ParseList(in); err != nil || !slices.Equal(got, want) {
			t.Errorf("ParseList(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := stackconfig.ParseList(`["unterminated`); err == nil {
		t.Error("a broken JSON array is read")
	}
}

// TestReaderKeepsEveryProblem reads keys of each kind with values that do not parse, on the engine's
// own config (WithoutEngine), and expects one error naming them all, each value as it was given
// and a secret's never.
func TestReaderKeepsEveryProblem(t *testing.T) {
	t.Parallel()
	values := map[string]string{
		"p:count": "0123x", "p:flag": "yes please", "p:wait": "ten minutes", "p:list": `["a",`,
		"p:" + stackconfig.KeyGatewayToken: "s3cr3t\nvalue", "p:good": " 7 ",
	}
	var good int
	err := stackconfig.WithoutEngine("p", "dev", values, []string{"p:" + stackconfig.KeyGatewayToken}, func(ctx *pulumi.Context) error {
		r := stackconfig.NewReader(ctx)
		good = r.Int("good", 1)
		if n := r.Int("count", 5); n != 5 {
			t.Errorf("a bad count reads as %d, not its default", n)
		}
		r.Bool("flag")
		if d := r.Duration("wait", time.Minute); d != time.Minute {
			t.Errorf("a bad duration reads as %s, not its default", d)
		}
		r.List("list", []string{"def"}, "a list of words")
		secrets := r.GatewaySecrets()
		return r.Checked(ctx.Stack(), &stackconfig.ValidationError{Fields: stackconfig.CheckSecrets(ctx.Stack(), secrets, secrets)})
	})
	var verr *stackconfig.ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("err = %v, want a *ValidationError", err)
	}
	if good != 7 {
		t.Errorf("Int(\" 7 \") = %d", good)
	}
	want := []string{"count", "flag", "wait", "list", stackconfig.KeyGatewayToken}
	if !slices.Equal(verr.Keys(), want) || verr.Stack != "dev" {
		t.Errorf("keys %v of stack %q, want %v of dev", verr.Keys(), verr.Stack, want)
	}
	msg := err.Error()
	for _, s := range []string{`"0123x"`, "a whole number", `"yes please"`, "true or false", "a duration like 90m or 4h", "a list of words", "one line"} {
		if !strings.Contains(msg, s) {
			t.Errorf("the error does not say %s:\n%s", s, msg)
		}
	}
	if strings.Contains(msg, "s3cr3t") {
		t.Errorf("the error shows the secret:\n%s", msg)
	}
}

func TestCheckSecretsRefusesPlainText(t *testing.T) {
	t.Parallel()
	secrets := map[string]stackconfig.Secret{stackconfig.KeyGatewayToken: stackconfig.NewSecret("plain", false)}
	all := map[string]stackconfig.Secret{"ssh_key": stackconfig.NewSecret("k", false), stackconfig.KeyGatewayToken: secrets[stackconfig.KeyGatewayToken]}
	fields := stackconfig.CheckSecrets("prod", secrets, all)
	if len(fields) != 2 || fields[0].Key != stackconfig.KeyGatewayToken || fields[1].Key != "ssh_key" {
		t.Fatalf("fields %v, want gateway_token and ssh_key", fields)
	}
	for _, f := range fields {
		if !f.Redacted || !strings.Contains(f.Error(), "Pulumi.prod.yaml") || !strings.Contains(f.Error(), "pulumi config set --secret "+f.Key) {
			t.Errorf("%v", f)
		}
	}
	if fields := stackconfig.CheckSecrets("prod", nil, map[string]stackconfig.Secret{"k": stackconfig.NewSecret("v", true)}); len(fields) != 0 {
		t.Errorf("a secret set with --secret is refused: %v", fields)
	}
}

func TestCheckImage(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{stackconfig.DefaultOpenClawImage, "ghcr.io/openclaw/openclaw:2026.9.6", "localhost:5000/openclaw@sha256:" + strings.Repeat("a", 64)} {
		if f := stackconfig.CheckImage(ok); f != nil {
			t.Errorf("%s refused: %v", ok, f)
		}
	}
	for _, bad := range []string{"", "ghcr.io/OpenClaw/openclaw", "openclaw:latest; reboot", "x/" + strings.Repeat("a", 260)} {
		if f := stackconfig.CheckImage(bad); len(f) != 1 || f[0].Key != stackconfig.KeyOpenClawImage {
			t.Errorf("%q accepted: %v", bad, f)
		}
	}
}

func TestOnboardAuthChoice(t *testing.T) {
	t.Parallel()
	s := stackconfig.NewSecret("k", true)
	for _, c := range []struct {
		keys []string
		want string
	}{
		{nil, ""},
		{[]string{stackconfig.KeyOpenRouterAPIKey}, ""},
		{[]string{stackconfig.KeyGeminiAPIKey, stackconfig.KeyOpenAIAPIKey}, "openai-api-key"},
		{[]string{stackconfig.KeyGeminiAPIKey, stackconfig.KeyAnthropicAPIKey}, "apiKey"},
	} {
		secrets := map[string]stackconfig.Secret{}
		for _, k := range c.keys {
			secrets[k] = s
		}
		if got := stackconfig.OnboardAuthChoice(secrets); got != c.want {
			t.Errorf("%v: %q, want %q", c.keys, got, c.want)
		}
	}
}

func TestSecretNeverPrints(t *testing.T) {
	t.Parallel()
	s := stackconfig.NewSecret("sk-very-secret", true)
	for _, format := range []string{"%v", "%+v", "%s", "%#v"} {
		if out := fmt.Sprintf(format, s); strings.Contains(out, "sk-very") {
			t.Errorf("%s prints the value: %s", format, out)
		}
	}
	if s.Reveal() != "sk-very-secret" {
		t.Error("Reveal")
	}
}

// TestDefaultImageIsTheTestedRelease: the image a deployment gets when openclaw_image is not set
// is the OpenClaw release the tests run (tools/openclaw, scripts/install-openclaw.sh).
func TestDefaultImageIsTheTestedRelease(t *testing.T) {
	t.Parallel()
	tested, err := openclaw.PinnedVersion()
	if err != nil || tested == "" {
		t.Fatalf("the tested release: %q %v", tested, err)
	}
	if want := "ghcr.io/openclaw/openclaw:" + tested; stackconfig.DefaultOpenClawImage != want {
		t.Errorf("DefaultOpenClawImage = %s; the tests run OpenClaw %s, so it must be %s", stackconfig.DefaultOpenClawImage, tested, want)
	}
}
