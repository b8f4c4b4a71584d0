// Package stackconfig reads and checks a stack's configuration for the targets' programs: a Reader
// over the engine's config that keeps every value it cannot read, errors that name the key, the
// value and what the key allows, secrets that never print, and the keys every target's gateway
// has (its image and its secrets).
//
// A target's Load reads its values with a Reader, validates them, and returns every problem at
// once, in a *ValidationError, before its program registers anything. WithoutEngine runs such a
// Load on plain values, so that the driver refuses bad input before it touches a stack.
package stackconfig

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/clawdeploy/clawdeploy/images"
)

// The keys every target's gateway has, in the project namespace.
const (
	KeyOpenClawImage = "openclaw_image"
	// KeyOpenClawImagePinned is openclaw_image pinned to a digest (repository:tag@sha256:…), in the
	// clawdeploy namespace: the driver sets it at up (package images), never the operator. A pin
	// of another image than openclaw_image is stale and ignored.
	KeyOpenClawImagePinned = "clawdeploy:openclawImage"

	KeyGatewayToken     = "gateway_token"
	KeyAnthropicAPIKey  = "anthropic_api_key"
	KeyOpenAIAPIKey     = "openai_api_key"
	KeyOpenRouterAPIKey = "openrouter_api_key"
	KeyGeminiAPIKey     = "gemini_api_key"
)

// DefaultOpenClawImage is the gateway's image when openclaw_image is not set: the release the
// tests run for real (tools/openclaw/gateway/package.json pins it; a test keeps the two in step).
const DefaultOpenClawImage = "ghcr.io/openclaw/openclaw:2026.9.6"

// SecretKeys are the gateway's secret keys, each with the environment variable the gateway reads
// it from. Each must be set with `pulumi config set --secret`; each that is set is rendered into
// the gateway's environment.
var SecretKeys = map[string]string{
	KeyGatewayToken:     "OPENCLAW_GATEWAY_TOKEN",
	KeyAnthropicAPIKey:  "ANTHROPIC_API_KEY",
	KeyOpenAIAPIKey:     "OPENAI_API_KEY",
	KeyOpenRouterAPIKey: "OPENROUTER_API_KEY",
	KeyGeminiAPIKey:     "GEMINI_API_KEY",
}

// OnboardAuthChoice picks `openclaw onboard --auth-choice` from the provider keys configured;
// empty lets OpenClaw decide.
func OnboardAuthChoice(secrets map[string]Secret) string {
	for _, c := range []struct{ key, choice string }{
		{KeyAnthropicAPIKey, "apiKey"},
		{KeyOpenAIAPIKey, "openai-api-key"},
		{KeyGeminiAPIKey, "gemini-api-key"},
	} {
		if _, ok := secrets[c.key]; ok {
			return c.choice
		}
	}
	return ""
}

// Secret is a secret config value. It never prints its value: use Reveal where the plaintext is
// really needed, and Output to hand it to a resource as a Pulumi secret.
type Secret struct {
	value string
	// encrypted reports whether the value was set with --secret.
	encrypted bool
}

// NewSecret returns a Secret holding value, as set with --secret when encrypted is true.
func NewSecret(value string, encrypted bool) Secret {
	return Secret{value: value, encrypted: encrypted}
}

// Reveal returns the plaintext.
func (s Secret) Reveal() string { return s.value }

// Output returns the value as a Pulumi secret output.
func (s Secret) Output() pulumi.StringOutput {
	return pulumi.ToSecret(pulumi.String(s.value)).(pulumi.StringOutput)
}

// String redacts the value.
func (s Secret) String() string { return "[secret]" }

// GoString redacts the value from %#v as well.
func (s Secret) GoString() string { return "stackconfig.Secret{[secret]}" }

// FieldError is one invalid config value: the key, the value (empty when it is secret) and what
// the key allows.
type FieldError struct {
	Key     string
	Value   string
	Allowed string
	// Redacted hides Value from the message, for secret keys.
	Redacted bool
}

func (e *FieldError) Error() string {
	if e.Redacted {
		return fmt.Sprintf("config %s must be %s", e.Key, e.Allowed)
	}
	return fmt.Sprintf("config %s must be %s, got %q", e.Key, e.Allowed, e.Value)
}

// ValidationError lists every invalid config value of a stack. It is returned before any resource
// is registered.
type ValidationError struct {
	Stack  string
	Fields []*FieldError
}

func (e *ValidationError) Error() string {
	lines := make([]string, 0, len(e.Fields)+1)
	lines = append(lines, fmt.Sprintf("invalid configuration for stack %q:", e.Stack))
	for _, f := range e.Fields {
		lines = append(lines, "  "+f.Error())
	}
	return strings.Join(lines, "\n")
}

// Keys returns the keys that failed, in order.
func (e *ValidationError) Keys() []string {
	keys := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		keys[i] = f.Key
	}
	return keys
}

// ParseList reads a list value as configuration holds it: a JSON array (a YAML list in the stack
// file), or text with the entries between commas (--config instance_types=a,b). Entries are
// trimmed; empty ones are dropped.
func ParseList(v string) ([]string, error) {
	var entries []string
	if strings.HasPrefix(strings.TrimSpace(v), "[") {
		if err := json.Unmarshal([]byte(v), &entries); err != nil {
			return nil, err
		}
	} else {
		entries = strings.Split(v, ",")
	}
	var out []string
	for _, e := range entries {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out, nil
}

// imagePattern is the grammar of a container image reference (distribution/reference),
// [registry[:port]/]path[:tag][@sha256:digest], with lower-case path components.
var imagePattern = regexp.MustCompile(`^` +
	`(?:(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*)(?::[0-9]+)?/)?` +
	`[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*` +
	`(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?` +
	`(?:@sha256:[a-f0-9]{64})?$`)

// CheckImage refuses an openclaw_image that is not a container image reference.
func CheckImage(image string) []*FieldError {
	if len(image) > 255 || !imagePattern.MatchString(image) {
		return []*FieldError{{Key: KeyOpenClawImage, Value: image,
			Allowed: "a container image reference like ghcr.io/openclaw/openclaw:2026.2.26"}}
	}
	return nil
}

// CheckSecrets refuses each of the gateway's secrets that is not one line (the host keeps them as
// KEY=value lines of an environment file, where a line break would end the value and start another
// variable), then each secret of all that was not set with --secret. all holds secrets, and the
// target's own secrets beside them.
func CheckSecrets(stack string, secrets, all map[string]Secret) []*FieldError {
	var fields []*FieldError
	for _, key := range slices.Sorted(maps.Keys(secrets)) {
		if strings.ContainsAny(secrets[key].Reveal(), "\n\r\x00") {
			fields = append(fields, &FieldError{Key: key, Redacted: true,
				Allowed: "one line: the host keeps each secret as a KEY=value line"})
		}
	}
	for _, key := range slices.Sorted(maps.Keys(all)) {
		if !all[key].encrypted {
			fields = append(fields, &FieldError{
				Key:      key,
				Redacted: true,
				Allowed: fmt.Sprintf("set as a secret, but it is in plain text in Pulumi.%s.yaml: "+
					"run `pulumi config set --secret %s` and rotate the value", stack, key),
			})
		}
	}
	return fields
}

// Reader reads config values, keeping those it cannot read as FieldErrors so that a target's Load
// reports them with the rest (Checked).
type Reader struct {
	ctx  *pulumi.Context
	errs []*FieldError
}

// NewReader reads the config of the stack ctx runs.
func NewReader(ctx *pulumi.Context) *Reader { return &Reader{ctx: ctx} }

// FullKey returns key with its namespace: project keys are bare in messages and in the runbook,
// but the engine knows them as <project>:<key>.
func (r *Reader) FullKey(key string) string {
	if strings.Contains(key, ":") {
		return key
	}
	return r.ctx.Project() + ":" + key
}

// Raw returns the value of key as given, and whether it is set to something.
func (r *Reader) Raw(key string) (string, bool) {
	v, ok := r.ctx.GetConfig(r.FullKey(key))
	return v, ok && v != ""
}

// Str returns the value of key trimmed, or def.
func (r *Reader) Str(key, def string) string {
	if v, ok := r.Raw(key); ok {
		return strings.TrimSpace(v)
	}
	return def
}

// Image returns the image the gateway's hosts run: openclaw_image (or def), pinned to the digest
// the driver resolved it to when it did (images.Effective). A pin that is no image reference with
// a digest is kept as a FieldError.
func (r *Reader) Image(def string) string {
	image := r.Str(KeyOpenClawImage, def)
	pinned, ok := r.Raw(KeyOpenClawImagePinned)
	if !ok {
		return image
	}
	if images.Digest(pinned) == "" || CheckImage(pinned) != nil {
		r.errs = append(r.errs, &FieldError{Key: KeyOpenClawImagePinned, Value: pinned,
			Allowed: "an image reference with its digest, like ghcr.io/openclaw/openclaw:2026.9.6@sha256:<64 hex digits>, " +
				"as `clawdeploy up` sets it (remove it to have the next up resolve openclaw_image again)"})
		return image
	}
	return images.Effective(image, pinned)
}

// Int returns the value of key as a whole number, or def.
func (r *Reader) Int(key string, def int) int {
	v, ok := r.Raw(key)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		r.errs = append(r.errs, &FieldError{Key: key, Value: v, Allowed: "a whole number"})
		return def
	}
	return n
}

// List reads a list key (ParseList); def when it is not set or lists nothing. allowed says what
// the key holds, for the error when the value is not a list.
func (r *Reader) List(key string, def []string, allowed string) []string {
	v, ok := r.Raw(key)
	if !ok {
		return def
	}
	l, err := ParseList(v)
	if err != nil {
		r.errs = append(r.errs, &FieldError{Key: key, Value: v, Allowed: allowed})
		return def
	}
	if len(l) == 0 {
		return def
	}
	return l
}

// Duration returns the value of key as a Go duration (90m, 4h), or def.
func (r *Reader) Duration(key string, def time.Duration) time.Duration {
	v, ok := r.Raw(key)
	if !ok {
		return def
	}
	d, err := time.ParseDuration(strings.TrimSpace(v))
	if err != nil {
		r.errs = append(r.errs, &FieldError{Key: key, Value: v, Allowed: "a duration like 90m or 4h"})
		return def
	}
	return d
}

// Bool returns the value of key as true or false; false when it is not set.
func (r *Reader) Bool(key string) bool {
	v, ok := r.Raw(key)
	if !ok {
		return false
	}
	b, err := strconv.ParseBool(strings.TrimSpace(v))
	if err != nil {
		r.errs = append(r.errs, &FieldError{Key: key, Value: v, Allowed: "true or false"})
	}
	return b
}

// Secret returns the value of key as a Secret, and whether it is set.
func (r *Reader) Secret(key string) (Secret, bool) {
	v, ok := r.Raw(key)
	if !ok {
		return Secret{}, false
	}
	return NewSecret(v, r.ctx.IsConfigSecret(r.FullKey(key))), true
}

// GatewaySecrets returns the gateway's secret keys (SecretKeys) that are set.
func (r *Reader) GatewaySecrets() map[string]Secret {
	secrets := map[string]Secret{}
	for _, key := range slices.Sorted(maps.Keys(SecretKeys)) {
		if s, ok := r.Secret(key); ok {
			secrets[key] = s
		}
	}
	return secrets
}

// Checked joins the values that could not be read with what the target's validation (its result,
// err) refused, into one *ValidationError, or nil when there is nothing.
func (r *Reader) Checked(stack string, err error) error {
	fields := r.errs
	var verr *ValidationError
	if errors.As(err, &verr) {
		fields = append(fields, verr.Fields...)
	}
	for _, f := range fields {
		// A value is shown as it was given (0123 stays 0123), and a value set as a secret is
		// never shown, whatever key it was given for.
		if given, ok := r.Raw(f.Key); ok {
			f.Value = given
		}
		f.Redacted = f.Redacted || r.ctx.IsConfigSecret(r.FullKey(f.Key))
	}
	if len(fields) > 0 {
		return &ValidationError{Stack: stack, Fields: fields}
	}
	return nil
}

// WithoutEngine runs load (a target's Load, which registers nothing) on values (namespaced keys,
// like openclaw:availability_zone and aws:region), with the keys in secretKeys marked secret, and
// returns its error as it returned it.
func WithoutEngine(project, stack string, values map[string]string, secretKeys []string, load pulumi.RunFunc) error {
	err := pulumi.RunErr(load, pulumi.WithMocks(project, stack, noResources{}), func(info *pulumi.RunInfo) {
		info.Config = values
		info.ConfigSecretKeys = secretKeys
	})
	// RunErr wraps the program's error in a list of one; the validation error is the message.
	var invalid *ValidationError
	if errors.As(err, &invalid) {
		return invalid
	}
	return err
}

// noResources is the monitor WithoutEngine runs a Load under: it registers nothing and calls
// nothing, so neither is answered.
type noResources struct{}

func (noResources) Call(args pulumi.MockCallArgs) (resource.PropertyMap, error) {
	return nil, fmt.Errorf("checking config: unexpected call of %s", args.Token)
}

func (noResources) NewResource(args pulumi.MockResourceArgs) (string, resource.PropertyMap, error) {
	return "", nil, fmt.Errorf("checking config: unexpected resource %s", args.Name)
}
