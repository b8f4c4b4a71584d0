package components

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/pulumi/pulumi-command/sdk/go/command/local"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// TypeOpenRouterKey is the OpenRouterKey component's type token.
const TypeOpenRouterKey = "clawdeploy:vps:OpenRouterKey"

// OpenRouterKeyArgs configures OpenRouterKey.
type OpenRouterKeyArgs struct {
	// APIBase is OpenRouter's API, https://openrouter.ai/api/v1.
	APIBase string
	// ProvisioningKey is the management key that creates and deletes API keys.
	ProvisioningKey pulumi.StringInput
	// Name is the key's name in OpenRouter's console. It must be the deployment's alone (see
	// OpenRouterKeyName): a creation deletes the keys that already have it.
	Name pulumi.StringInput
}

// OpenRouterKeyName is the name of a deployment's OpenRouter key: the stack and the first 12 hex
// digits of the SHA-256 of a public key of the deployment's own (its SSH key). Another deployment
// with the same stack name, on another backend with the same provisioning key, has another.
func OpenRouterKeyName(stack, publicKey string) string {
	sum := sha256.Sum256([]byte(strings.TrimSpace(publicKey)))
	return fmt.Sprintf("openclaw-%s-%s", stack, hex.EncodeToString(sum[:])[:12])
}

// OpenRouterKey is an OpenRouter API key of the deployment's own, created from a provisioning
// key where the driver runs and deleted on destroy. Its completion is the openrouter_key_created
// stage.
type OpenRouterKey struct {
	pulumi.ResourceState

	// Key is the API key, a secret.
	Key pulumi.StringOutput `pulumi:"key"`
	// Hash identifies the key to OpenRouter's management API.
	Hash pulumi.StringOutput `pulumi:"hash"`
}

// The commands run by local.Command (with /bin/sh, so POSIX sh), the settings in their
// environment, never in their text (which the state and the logs show). The provisioning key
// reaches curl on its standard input (-H @-, written by the shell's own printf), never in its
// arguments, which every user of the machine can read in the process list.
//
// Create first deletes the keys that already have the deployment's name: only a creation whose
// answer was lost (the driver killed mid-request) leaves one, and nobody ever received its
// secret. So running create again, which is what resuming an interrupted creation does, leaves
// exactly one key. It reads every page of the key list (100 keys each) before deleting anything.
//
// Delete reads the key's hash from what create printed, PULUMI_COMMAND_STDOUT.
const (
	openRouterAPI = `api() {
	printf 'Authorization: Bearer %s\n' "$OPENROUTER_PROVISIONING_KEY" | curl -fsS --max-time 30 -H @- "$@"
}
`
	OpenRouterCreateKeyCommand = `set -eu
` + openRouterAPI + `stale=""
offset=0
while [ "$offset" -lt 10000 ]; do
	page=$(api "$OPENROUTER_API_BASE/keys?offset=$offset")
	case $page in *'"hash"'*) ;; *) break ;; esac
	# One flat key object per line; then the hashes of those named like this deployment's key.
	stale="$stale $(printf '%s' "$page" | tr -d '\r\n' | tr '{' '\n' | sed 's/"[[:space:]]*:[[:space:]]*/":/g' |
		grep -F "\"name\":\"$OPENROUTER_KEY_NAME\"" | grep -o '"hash":"[^"]*"' | cut -d '"' -f 4 || true)"
	offset=$((offset + 100))
done
for hash in $stale; do
	echo "deleting OpenRouter key $hash, left by an interrupted creation of $OPENROUTER_KEY_NAME" >&2
	api -X DELETE "$OPENROUTER_API_BASE/keys/$hash" >/dev/null
done
api -X POST "$OPENROUTER_API_BASE/keys" -H 'Content-Type: application/json' --data "{\"name\":\"$OPENROUTER_KEY_NAME\"}"`
	OpenRouterDeleteKeyCommand = `set -eu
` + openRouterAPI + `hash=$(printf '%s' "$PULUMI_COMMAND_STDOUT" | grep -o '"hash": *"[^"]*"' | head -n 1 | sed 's/.*"\([^"]*\)"$/\1/')
[ -n "$hash" ] || { echo "no key hash in what the key's creation printed" >&2; exit 1; }
api -X DELETE "$OPENROUTER_API_BASE/keys/$hash" >/dev/null`
)

// CreatedKey is what OpenRouter answers to a key's creation: the key once, and its hash.
type CreatedKey struct {
	Key  string `json:"key"`
	Data struct {
		Hash string `json:"hash"`
	} `json:"data"`
}

// ParseCreatedKey reads the creation's answer.
func ParseCreatedKey(stdout string) (CreatedKey, error) {
	var k CreatedKey
	if err := json.Unmarshal([]byte(stdout), &k); err != nil {
		return k, errors.New("OpenRouter's answer to the key's creation is not the JSON expected")
	}
	if k.Key == "" || k.Data.Hash == "" {
		return k, errors.New("OpenRouter's answer to the key's creation has no key or no hash")
	}
	return k, nil
}

// NewOpenRouterKey creates the key.
func NewOpenRouterKey(ctx *pulumi.Context, name string, args *OpenRouterKeyArgs, opts ...pulumi.ResourceOption) (*OpenRouterKey, error) {
	if args == nil || args.APIBase == "" || args.ProvisioningKey == nil || args.Name == nil {
		return nil, fmt.Errorf("components: NewOpenRouterKey %s needs an API base, a provisioning key and a name", name)
	}
	c := &OpenRouterKey{}
	if err := ctx.RegisterComponentResource(TypeOpenRouterKey, name, c, opts...); err != nil {
		return nil, err
	}
	cmd, err := local.NewCommand(ctx, name+"-key", &local.CommandArgs{
		Create: pulumi.String(OpenRouterCreateKeyCommand),
		Delete: pulumi.String(OpenRouterDeleteKeyCommand),
		Environment: pulumi.StringMap{
			"OPENROUTER_API_BASE":         pulumi.String(args.APIBase),
			"OPENROUTER_PROVISIONING_KEY": pulumi.ToSecret(args.ProvisioningKey).(pulumi.StringOutput),
			"OPENROUTER_KEY_NAME":         args.Name,
		},
		Interpreter: pulumi.ToStringArray([]string{"/bin/sh", "-c"}),
		Logging:     local.LoggingNone,
	}, pulumi.Parent(c), pulumi.AdditionalSecretOutputs([]string{"stdout"}))
	if err != nil {
		return nil, err
	}
	c.Key = pulumi.ToSecret(cmd.Stdout.ApplyT(func(out string) (string, error) {
		k, err := ParseCreatedKey(out)
		return k.Key, err
	})).(pulumi.StringOutput)
	c.Hash = cmd.Stdout.ApplyT(func(out string) (string, error) {
		k, err := ParseCreatedKey(out)
		return k.Data.Hash, err
	}).(pulumi.StringOutput)
	if err := ctx.RegisterResourceOutputs(c, pulumi.Map{"key": c.Key, "hash": c.Hash}); err != nil {
		return nil, err
	}
	return c, nil
}
