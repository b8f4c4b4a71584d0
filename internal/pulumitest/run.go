package pulumitest

import (
	"maps"
	"slices"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// Option configures Run.
type Option func(*settings)

type settings struct {
	stack   string
	config  map[string]string
	secrets []string
	calls   map[string]CallFunc
	outputs map[string]OutputFunc
	ids     map[string]IDFunc
}

// WithStack runs the program as the named stack.
func WithStack(name string) Option {
	return func(s *settings) { s.stack = name }
}

// WithConfig sets plain config values. Keys without a namespace are in the project's.
func WithConfig(values map[string]string) Option {
	return func(s *settings) {
		for k, v := range values {
			s.config[fullKey(k)] = v
		}
	}
}

// WithSecretConfig sets config values as if set with --secret.
func WithSecretConfig(values map[string]string) Option {
	return func(s *settings) {
		for k, v := range values {
			s.config[fullKey(k)] = v
			s.secrets = append(s.secrets, fullKey(k))
		}
	}
}

// WithCall answers the data source token with f, replacing any default.
func WithCall(token string, f CallFunc) Option {
	return func(s *settings) { s.calls[token] = f }
}

// WithID gives new resources of type typ the id f returns, instead of "<name>-id".
func WithID(typ string, f IDFunc) Option {
	return func(s *settings) { s.ids[typ] = f }
}

// WithOutputs adds provider-computed outputs to every resource of type typ.
func WithOutputs(typ string, f OutputFunc) Option {
	return func(s *settings) { s.outputs[typ] = f }
}

func fullKey(k string) string {
	if strings.Contains(k, ":") {
		return k
	}
	return Project + ":" + k
}

// Run runs program under mocks and returns what it registered, with the program's error. Config
// is injected into the run itself, not the environment, so tests may run in parallel.
func Run(program pulumi.RunFunc, opts ...Option) (*Mocks, error) {
	s := &settings{
		stack:   DefaultStack,
		config:  map[string]string{},
		calls:   map[string]CallFunc{},
		outputs: map[string]OutputFunc{},
		ids:     map[string]IDFunc{},
	}
	for _, o := range opts {
		o(s)
	}
	m := &Mocks{
		stack:   s.stack,
		region:  s.config["aws:region"],
		calls:   maps.Clone(s.calls),
		outputs: maps.Clone(s.outputs),
		ids:     maps.Clone(s.ids),
	}
	err := pulumi.RunErr(program,
		pulumi.WithMocks(Project, s.stack, m),
		func(info *pulumi.RunInfo) {
			info.Config = maps.Clone(s.config)
			info.ConfigSecretKeys = slices.Clone(s.secrets)
		})
	return m, err
}
