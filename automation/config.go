package automation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"gopkg.in/yaml.v3"

	"github.com/clawdeploy/clawdeploy"
	"github.com/clawdeploy/clawdeploy/targets/stackconfig"
)

// ConfigInput is configuration to set on a stack before an operation. Keys without a namespace are
// the project's (availability_zone means openclaw:availability_zone).
type ConfigInput struct {
	Values  map[string]string
	Secrets map[string]string
}

func (c ConfigInput) empty() bool { return len(c.Values) == 0 && len(c.Secrets) == 0 }

// over returns base with the input's values and secrets set over it, by namespaced key.
func (c ConfigInput) over(base auto.ConfigMap) auto.ConfigMap {
	merged := maps.Clone(base)
	if merged == nil {
		merged = auto.ConfigMap{}
	}
	for k, v := range c.Values {
		merged[fullKey(k)] = auto.ConfigValue{Value: v}
	}
	for k, v := range c.Secrets {
		merged[fullKey(k)] = auto.ConfigValue{Value: v, Secret: true}
	}
	return merged
}

// with is c with key set to value, c's own values left as they are.
func (c ConfigInput) with(key, value string) ConfigInput {
	c.Values = maps.Clone(c.Values)
	if c.Values == nil {
		c.Values = map[string]string{}
	}
	c.Values[key] = value
	return c
}

// flatten splits a configuration into its values and the sorted keys that are secret: the form
// a target's check takes.
func flatten(config auto.ConfigMap) (map[string]string, []string) {
	values := make(map[string]string, len(config))
	var secrets []string
	for k, v := range config {
		values[k] = v.Value
		if v.Secret {
			secrets = append(secrets, k)
		}
	}
	slices.Sort(secrets)
	return values, secrets
}

// fullKey puts a bare key in the project's namespace.
func fullKey(k string) string {
	if strings.Contains(k, ":") {
		return k
	}
	return clawdeploy.Project + ":" + k
}

// checkKeys refuses keys the program does not read, before anything is touched: a typo would
// otherwise be ignored, and a provider key (aws:secretKey, say) would be stored unchecked, in
// plain text. A program of the caller's takes any key.
func (d *Driver) checkKeys(in ConfigInput) error {
	if !d.profile.own {
		return nil
	}
	known := map[string]bool{}
	for _, k := range d.profile.Keys().Help {
		known[fullKey(k)] = true
	}
	for _, set := range []map[string]string{in.Values, in.Secrets} {
		for _, k := range slices.Sorted(maps.Keys(set)) {
			if !known[fullKey(k)] {
				return &ConfigError{Err: fmt.Errorf("unknown config key %s for target %s; known keys: %s",
					k, d.profile.Name(), strings.Join(d.profile.Keys().Help, ", "))}
			}
		}
	}
	return nil
}

// check validates a whole configuration with the target's check, when it has one.
func (d *Driver) check(stack string, config auto.ConfigMap) error {
	if !d.profile.own {
		return nil
	}
	values, secrets := flatten(config)
	if err := d.profile.Check(d.projectName, stack, values, secrets); err != nil {
		return &ConfigError{Err: err}
	}
	return nil
}

// applyConfig validates the stack's configuration with in applied, and writes in only when the
// whole is valid. For a target's own program every operation goes through it, so invalid
// configuration fails before the engine starts.
func (d *Driver) applyConfig(ctx context.Context, s auto.Stack, in ConfigInput) error {
	_, err := d.applyUpConfig(ctx, s, in, nil)
	return err
}

// applyUpConfig is applyConfig for an up (opts, when not nil): the gateway's image is pinned
// to a digest (pinImage) in the same write, and nothing is written when it cannot be.
func (d *Driver) applyUpConfig(ctx context.Context, s auto.Stack, in ConfigInput, opts *UpOptions) (*imagePin, error) {
	if !d.profile.own && in.empty() {
		return nil, nil
	}
	current, err := s.GetAllConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the configuration of stack %s: %w", s.Name(), err)
	}
	merged := in.over(current)
	if err := d.check(s.Name(), merged); err != nil {
		return nil, err
	}
	var pin *imagePin
	if opts != nil && d.profile.own {
		if pin, err = d.pinImage(ctx, merged, opts.RefreshImage, false, opts.pinned); err != nil {
			return nil, err
		}
		if pin != nil && pin.Pinned != current[stackconfig.KeyOpenClawImagePinned].Value {
			in = in.with(stackconfig.KeyOpenClawImagePinned, pin.Pinned)
		}
	}
	return pin, d.setConfig(ctx, s.Name(), "", in)
}

// setConfig writes in into the stack's configuration, or into file when it is not empty (a copy
// of the stack file that a preview reads). Plain values go on the command line; each secret
// goes to its own CLI through standard input, never in a process's arguments (and so of any
// length).
func (d *Driver) setConfig(ctx context.Context, stack, file string, in ConfigInput) error {
	common := []string{"--stack", stack}
	if file != "" {
		common = append(common, "--config-file", file)
	}
	var plain []string
	lists := map[string]any{}
	for _, k := range slices.Sorted(maps.Keys(in.Values)) {
		if !slices.Contains(d.profile.Keys().List, strings.TrimPrefix(fullKey(k), clawdeploy.Project+":")) {
			plain = append(plain, "--plaintext", fullKey(k)+"="+in.Values[k])
			continue
		}
		// A list is stored as a list (a YAML list in the stack file), the type Pulumi.yaml
		// declares for it.
		entries, err := stackconfig.ParseList(in.Values[k])
		if err != nil {
			return &ConfigError{Err: fmt.Errorf("config %s must be a list, like a,b or [\"a\",\"b\"], got %q", k, in.Values[k])}
		}
		text, _ := json.Marshal(entries)
		lists[fullKey(k)] = map[string]any{"value": string(text), "objectValue": entries, "secret": false}
	}
	if len(plain) > 0 {
		if err := d.pulumi(ctx, stack, nil, append(append([]string{"config", "set-all"}, common...), plain...)...); err != nil {
			return fmt.Errorf("setting the configuration of stack %s: %w", stack, err)
		}
	}
	if len(lists) > 0 {
		text, _ := json.Marshal(lists)
		if err := d.pulumi(ctx, stack, nil, append(append([]string{"config", "set-all"}, common...), "--json", string(text))...); err != nil {
			return fmt.Errorf("setting the configuration of stack %s: %w", stack, err)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(in.Secrets)) {
		args := append([]string{"config", "set", "--secret", "--raw"}, common...)
		if err := d.pulumi(ctx, stack, strings.NewReader(in.Secrets[k]), append(args, fullKey(k))...); err != nil {
			return fmt.Errorf("setting the secret %s of stack %s: %w", k, stack, err)
		}
	}
	return nil
}

// Config returns a stack's configuration with in applied, without writing anything: namespaced
// values and the keys that are secret. A stack that does not exist yet has only in.
func (d *Driver) Config(ctx context.Context, stack string, in ConfigInput) (map[string]string, []string, error) {
	if err := CheckStackName(stack); err != nil {
		return nil, nil, err
	}
	if err := d.checkKeys(in); err != nil {
		return nil, nil, err
	}
	var current auto.ConfigMap
	s, err := d.stack(ctx, stack, false)
	var notFound *NotFoundError
	switch {
	case errors.As(err, &notFound):
	case err != nil:
		return nil, nil, err
	default:
		if current, err = s.GetAllConfig(ctx); err != nil {
			return nil, nil, fmt.Errorf("reading the configuration of stack %s: %w", stack, err)
		}
	}
	values, secrets := flatten(in.over(current))
	return values, secrets, nil
}

// CheckConfig validates the configuration an operation would run with, before anything is
// touched (exit 2 means nothing was): a new stack's is its stack file (operator mode,
// Pulumi.<stack>.yaml) with in over it; an existing stack's is its own with in over it, and it
// must be this target's (checkTarget). A stack
// that cannot be opened yet (recovery repairs what a killed process left) is validated once it
// is open, before any change.
func (d *Driver) CheckConfig(ctx context.Context, stack string, in ConfigInput) error {
	_, err := d.checkedConfig(ctx, stack, in)
	return err
}

// checkedConfig is CheckConfig, and the configuration it checked (the stack's or its stack
// file's, with in over it); nil when there was none to check.
func (d *Driver) checkedConfig(ctx context.Context, stack string, in ConfigInput) (auto.ConfigMap, error) {
	if err := d.checkKeys(in); err != nil {
		return nil, err
	}
	s, err := d.stack(ctx, stack, false)
	var notFound *NotFoundError
	switch {
	case errors.As(err, &notFound) && !d.profile.own:
		return nil, nil
	case errors.As(err, &notFound):
		file := auto.ConfigMap{}
		if d.projectDir != "" {
			if file, err = readStackFile(d.stackFile(stack)); err != nil {
				return nil, &ConfigError{Err: err}
			}
		}
		merged := in.over(file)
		return merged, d.check(stack, merged)
	case err != nil:
		return nil, nil
	}
	if _, err := d.checkTarget(ctx, s); err != nil || !d.profile.own {
		return nil, err
	}
	current, err := s.GetAllConfig(ctx)
	if err != nil {
		return nil, nil
	}
	merged := in.over(current)
	return merged, d.check(stack, merged)
}

// readStackFile reads a stack file's config, for validation: a secure (encrypted) value is
// marked secret and stands in as a placeholder, since only its presence is checked. A missing
// file has none.
func readStackFile(path string) (auto.ConfigMap, error) {
	config := auto.ConfigMap{}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return config, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	var file struct {
		Config map[string]any `yaml:"config"`
	}
	if err := yaml.Unmarshal(b, &file); err != nil {
		return nil, fmt.Errorf("%s is not a stack file: %w", path, err)
	}
	for k, v := range file.Config {
		k = fullKey(k)
		switch v := v.(type) {
		case map[string]any:
			if _, ok := v["secure"]; ok {
				config[k] = auto.ConfigValue{Value: "[encrypted]", Secret: true}
				continue
			}
			j, _ := json.Marshal(v)
			config[k] = auto.ConfigValue{Value: string(j)}
		case []any:
			j, _ := json.Marshal(v)
			config[k] = auto.ConfigValue{Value: string(j)}
		default:
			config[k] = auto.ConfigValue{Value: fmt.Sprint(v)}
		}
	}
	return config, nil
}
