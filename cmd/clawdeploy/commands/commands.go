// Package commands holds the clawdeploy commands, one per file, and the flags they share.
package commands

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/urfave/cli/v2"
	"gopkg.in/yaml.v3"

	"github.com/clawdeploy/clawdeploy/automation"
)

// Config replaces parts of the driver; the zero value is the real program.
type Config struct {
	Program pulumi.RunFunc
	Stages  *automation.Stages
	Finder  automation.Finder
	Waiter  automation.Waiter
	// RelaunchURNs are what `up --retry` replaces; nil means the target's.
	RelaunchURNs func(stack string) []string
	// HostChecker tells heal whether a host is gone; nil means the target's.
	HostChecker automation.HostChecker
	// Checkpointer takes the pre-upgrade checkpoint; nil means the target's.
	Checkpointer automation.Checkpointer
	// FinalSnapshots marks the snapshot a destroy leaves; nil means the target's.
	FinalSnapshots automation.FinalSnapshots
}

// ConfigKey is where the application keeps its Config.
const ConfigKey = "clawdeploy.config"

// GlobalFlags are accepted before any command.
var GlobalFlags = []cli.Flag{
	&cli.StringFlag{
		Name:    "dir",
		Usage:   "operator mode: the project directory holding Pulumi.yaml and Pulumi.<stack>.yaml (default: the current directory when it has a Pulumi.yaml; otherwise backend mode)",
		EnvVars: []string{"CLAWDEPLOY_PROJECT_DIR"},
	},
	&cli.StringFlag{
		Name:    "state-dir",
		Usage:   "where the journal, the work directories and (backend mode) the state live",
		Value:   "~/.clawdeploy",
		EnvVars: []string{"CLAWDEPLOY_STATE_DIR"},
	},
	&cli.StringFlag{
		Name:    "backend",
		Usage:   "Pulumi state backend URL (file://…, s3://…)",
		EnvVars: []string{"PULUMI_BACKEND_URL"},
	},
	&cli.StringFlag{
		Name:    "pulumi-root",
		Usage:   "directory whose bin/pulumi is the Pulumi CLI to run; default: pulumi on PATH",
		EnvVars: []string{"CLAWDEPLOY_PULUMI_ROOT"},
	},
	&cli.StringFlag{
		Name:    "target",
		Usage:   "deployment target: " + targetNames(),
		Value:   automation.DefaultTarget(),
		EnvVars: []string{"CLAWDEPLOY_TARGET"},
	},
	&cli.BoolFlag{
		Name:    "json",
		Usage:   "NDJSON events on stdout (time, type, stack and type-specific fields) instead of human progress",
		EnvVars: []string{"CLAWDEPLOY_JSON"},
	},
	&cli.DurationFlag{
		Name:    "drain",
		Usage:   "on SIGTERM or SIGINT, how long the engine gets to save its state before the process exits (code 4)",
		Value:   automation.DefaultDrain,
		EnvVars: []string{"CLAWDEPLOY_DRAIN"},
	},
	&cli.StringFlag{
		Name: "journal",
		Usage: "the journal: sqlite:/path/journal.db, or postgres://user@host/db for one shared by several hosts " +
			"(default: journal.db in the state directory)",
		EnvVars: []string{"CLAWDEPLOY_JOURNAL"},
	},
	&cli.DurationFlag{
		Name: "lease-ttl",
		Usage: "how long a deployment's lease lasts without a heartbeat (renewed every third of it): " +
			"how soon another host takes over what a dead one held",
		Value:   automation.DefaultLeaseTTL,
		EnvVars: []string{"CLAWDEPLOY_LEASE_TTL"},
	},
}

var (
	stackFlag = &cli.StringFlag{
		Name:    "stack",
		Aliases: []string{"s"},
		Usage:   "stack name: one stack per deployment, like dev or customer-42",
		EnvVars: []string{"CLAWDEPLOY_STACK", "PULUMI_STACK"},
	}
	configFlag = &cli.StringSliceFlag{
		Name:  "config",
		Usage: "set a config value, key=value (repeatable); keys without a namespace are the project's",
	}
	secretFlag = &cli.StringSliceFlag{
		Name: "secret",
		Usage: "set a secret config value, key=value (repeatable); stored encrypted, never printed; " +
			"key=- reads the value from standard input, which keeps it out of the process list",
	}
	secretFileFlag = &cli.StringSliceFlag{
		Name:  "secret-file",
		Usage: "set a secret config value from a file, key=path (repeatable); one final newline is dropped",
	}
	configFileFlag = &cli.StringFlag{
		Name:  "config-file",
		Usage: "YAML or JSON file of config values; a `secrets:` mapping in it holds secret ones",
	}
	enqueueFlag = &cli.BoolFlag{
		Name: "enqueue",
		Usage: "queue the operation for the workers (clawdeploy worker) instead of running it: prints the request's id " +
			"and exits at once; the configuration is checked first, its secrets are stored encrypted with the passphrase",
	}
	replaceFlag = &cli.StringSliceFlag{
		Name:  "replace",
		Usage: "replace the resource with this URN even if nothing changed (repeatable); see docs/operator.md, \"Restore onto a running stack\"",
	}
	refreshImageFlag = &cli.BoolFlag{
		Name: "refresh-image",
		Usage: "follow openclaw_image's tag: resolve it again and, where it moved since the stack pinned it, deploy the new digest " +
			"(an upgrade, with its checkpoint); without it the pinned digest stays",
	}
	waitFlag = &cli.DurationFlag{
		Name:  "wait",
		Usage: "wait this long for a deployment held by a live process instead of exiting 3",
	}
	setupTimeoutFlag = &cli.DurationFlag{
		Name:  "setup-timeout",
		Usage: "how long to wait for the setup to complete after the engine",
		Value: automation.DefaultSetupTimeout,
	}
	setupPollFlag = &cli.DurationFlag{
		Name:  "setup-poll",
		Usage: "how often to poll the setup's status (and an ordered VPS's delivery and rebuild)",
		Value: automation.DefaultSetupPoll,
	}
)

// Prepare readies a command and its subcommands for the application: flag errors are usage
// errors (exit 2), and the global flags are accepted after the command as well as before it.
func Prepare(cmd *cli.Command) {
	if cmd.OnUsageError != nil {
		return // prepared already: the commands are shared by every application built
	}
	cmd.OnUsageError = OnUsageError
	for _, f := range GlobalFlags {
		cmd.Flags = append(cmd.Flags, localCopy(f))
	}
	before := cmd.Before
	cmd.Before = func(cliContext *cli.Context) error {
		if err := inheritGlobals(cliContext); err != nil {
			return err
		}
		if before != nil {
			return before(cliContext)
		}
		return nil
	}
	for _, sub := range cmd.Subcommands {
		Prepare(sub)
	}
}

// localCopy is a global flag as a command accepts it: the same name, hidden from the command's
// help, without a default or an environment variable of its own (the global one has them).
func localCopy(f cli.Flag) cli.Flag {
	switch f := f.(type) {
	case *cli.StringFlag:
		return &cli.StringFlag{Name: f.Name, Usage: f.Usage, Hidden: true}
	case *cli.BoolFlag:
		return &cli.BoolFlag{Name: f.Name, Usage: f.Usage, Hidden: true}
	case *cli.DurationFlag:
		return &cli.DurationFlag{Name: f.Name, Usage: f.Usage, Hidden: true}
	}
	panic(fmt.Sprintf("global flag %s of type %T has no local copy", f.Names()[0], f))
}

// inheritGlobals gives the command's context the value of each global flag: the one given on
// the command line nearest the command (after it, else after a parent command, else before
// every command), or else the application's default or environment variable.
func inheritGlobals(cliContext *cli.Context) error {
	// The lineage runs from the command out to the application's context, whose flag set holds
	// the global flags, and ends in a bare context without an application.
	var lineage []*cli.Context
	for _, c := range cliContext.Lineage() {
		if c.App != nil {
			lineage = append(lineage, c)
		}
	}
	app := lineage[len(lineage)-1]
	for _, f := range GlobalFlags {
		name := f.Names()[0]
		from := app
		for _, c := range lineage[:len(lineage)-1] {
			if slices.Contains(c.LocalFlagNames(), name) {
				from = c
				break
			}
		}
		if from == cliContext {
			continue
		}
		if err := cliContext.Set(name, fmt.Sprint(from.Value(name))); err != nil {
			return cli.Exit(fmt.Sprintf("--%s: %v", name, err), automation.ExitUsage)
		}
	}
	return nil
}

// OnUsageError turns flag parsing errors into usage errors (exit 2).
func OnUsageError(_ *cli.Context, err error, _ bool) error {
	return cli.Exit(err.Error(), automation.ExitUsage)
}

// usageError reports bad usage: exit 2, nothing touched.
func usageError(format string, args ...any) error {
	return &automation.UsageError{Err: fmt.Errorf(format, args...)}
}

// stackName returns the --stack value, or a usage error.
func stackName(cliContext *cli.Context) (string, error) {
	name := cliContext.String(stackFlag.Name)
	if name == "" {
		return "", usageError("--stack is required (or set CLAWDEPLOY_STACK)")
	}
	return name, automation.CheckStackName(name)
}

// configInput gathers --config-file, --config and --secret, in that order of precedence.
// stackAndConfig reads --stack and the configuration flags of the commands that change a stack.
func stackAndConfig(cliContext *cli.Context) (string, automation.ConfigInput, error) {
	stack, err := stackName(cliContext)
	if err != nil {
		return "", automation.ConfigInput{}, err
	}
	in, err := configInput(cliContext)
	return stack, in, err
}

func configInput(cliContext *cli.Context) (automation.ConfigInput, error) {
	in := automation.ConfigInput{Values: map[string]string{}, Secrets: map[string]string{}}
	if path := cliContext.String(configFileFlag.Name); path != "" {
		if err := readConfigFile(path, in); err != nil {
			return in, err
		}
	}
	for flag, into := range map[string]map[string]string{configFlag.Name: in.Values, secretFlag.Name: in.Secrets} {
		for _, kv := range cliContext.StringSlice(flag) {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return in, usageError("--%s %q is not key=value", flag, redact(flag, kv))
			}
			into[k] = v
		}
	}
	stdinKey := ""
	for k, v := range in.Secrets {
		if v != "-" {
			continue
		}
		if stdinKey != "" {
			return in, usageError("--secret %s=- and --secret %s=- both read standard input: give one of them with --secret-file", stdinKey, k)
		}
		stdinKey = k
		b, err := io.ReadAll(os.Stdin)
		if err != nil {
			return in, usageError("--secret %s=-: reading standard input: %v", k, err)
		}
		in.Secrets[k] = withoutFinalNewline(b)
	}
	for _, kp := range cliContext.StringSlice(secretFileFlag.Name) {
		k, path, ok := strings.Cut(kp, "=")
		if !ok || k == "" || path == "" {
			return in, usageError("--secret-file %q is not key=path", kp)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return in, usageError("--secret-file %s: %v", k, err)
		}
		in.Secrets[k] = withoutFinalNewline(b)
	}
	return in, nil
}

// readConfigFile reads --config-file into in: a YAML (or JSON) mapping of keys to values, with a
// secrets: mapping of the secret ones. Each value is the text as written (0755 stays 0755, not
// 493); a value that is not one piece of text (null, a list, a mapping) is refused, naming its key.
func readConfigFile(path string, in automation.ConfigInput) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return usageError("reading --config-file: %v", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return usageError("--config-file %s is not a YAML or JSON mapping: %v", path, err)
	}
	if len(doc.Content) == 0 {
		return nil // empty
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return usageError("--config-file %s is not a YAML or JSON mapping of keys to values", path)
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		key, value := root.Content[i].Value, root.Content[i+1]
		if key != "secrets" {
			v, err := scalarText(path, key, value)
			if err != nil {
				return err
			}
			in.Values[key] = v
			continue
		}
		if value.Kind != yaml.MappingNode {
			return usageError("--config-file %s: secrets must be a mapping of keys to values", path)
		}
		for j := 0; j+1 < len(value.Content); j += 2 {
			sk := value.Content[j].Value
			v, err := scalarText(path, sk, value.Content[j+1])
			if err != nil {
				return err
			}
			in.Secrets[sk] = v
		}
	}
	return nil
}

// scalarText is a config file's value as the text written.
func scalarText(path, key string, n *yaml.Node) (string, error) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	switch {
	case n.Kind != yaml.ScalarNode:
		return "", usageError("--config-file %s: %s must be one value (text, a number, true or false), not a list or a mapping", path, key)
	case n.Tag == "!!null": // null, ~ or nothing: no secret shows in that
		return "", usageError("--config-file %s: %s has no value (%q reads as null): quote it, give it a value or remove the key",
			path, key, n.Value)
	}
	return n.Value, nil
}

// withoutFinalNewline drops one final newline (\n or \r\n), which files and pipes usually end
// with and values do not.
func withoutFinalNewline(b []byte) string {
	s := strings.TrimSuffix(string(b), "\n")
	return strings.TrimSuffix(s, "\r")
}

func redact(flag, kv string) string {
	if flag == secretFlag.Name {
		return "…"
	}
	return kv
}

// newDriver builds the driver from the global flags, with events as --json says.
func newDriver(cliContext *cli.Context) (*automation.Driver, error) {
	c, _ := cliContext.App.Metadata[ConfigKey].(Config)
	target := cliContext.String("target")
	dir := cliContext.String("dir")
	if dir == "" {
		dir = automation.DefaultProjectDir(target)
	}
	opts := &automation.Options{
		Program:        c.Program,
		Stages:         c.Stages,
		Finder:         c.Finder,
		Waiter:         c.Waiter,
		RelaunchURNs:   c.RelaunchURNs,
		HostChecker:    c.HostChecker,
		Checkpointer:   c.Checkpointer,
		FinalSnapshots: c.FinalSnapshots,
		Target:         target,
		ProjectDir:     dir,
		StateDir:       cliContext.String("state-dir"),
		BackendURL:     cliContext.String("backend"),
		PulumiRoot:     cliContext.String("pulumi-root"),
		Drain:          cliContext.Duration("drain"),
		JournalURL:     cliContext.String("journal"),
		LeaseTTL:       cliContext.Duration("lease-ttl"),
	}
	if cliContext.Bool("json") {
		opts.Events = automation.NDJSON(os.Stdout)
	} else {
		opts.Events = automation.Human(os.Stderr)
		opts.Progress = os.Stdout
	}
	for flag, into := range map[string]*time.Duration{
		setupPollFlag.Name: &opts.SetupPoll, setupTimeoutFlag.Name: &opts.SetupTimeout, waitFlag.Name: &opts.WaitForLease,
	} {
		if cliContext.IsSet(flag) {
			*into = cliContext.Duration(flag)
		}
	}
	return automation.New(cliContext.Context, opts)
}

// checkDurations refuses durations that cannot be meant: a negative one, or a zero drain,
// setup timeout or setup poll.
func checkDurations(cliContext *cli.Context) error {
	for _, flag := range []string{"drain", "lease-ttl", setupPollFlag.Name, setupTimeoutFlag.Name, waitFlag.Name} {
		if !cliContext.IsSet(flag) {
			continue
		}
		v := cliContext.Duration(flag)
		if v < 0 || v == 0 && flag != waitFlag.Name {
			return usageError("--%s must be a positive duration like 30s or 20m, got %s", flag, v)
		}
	}
	return nil
}

// finish ends a command: with --json, a result event carrying the outcome and the non-secret
// outputs; the error goes back to main, which prints it and exits with its code.
func finish(cliContext *cli.Context, stack, operation string, outputs auto.OutputMap, err error) error {
	return finishWith(cliContext, stack, operation, outputs, automation.Event{}, err)
}

// finishWith is finish with more to say in the result line: the checkpoint an up took before an
// upgrade, what a destroy released at the VPS's provider.
func finishWith(cliContext *cli.Context, stack, operation string, outputs auto.OutputMap, more automation.Event, err error) error {
	cp := more.Checkpoint
	if !cliContext.Bool("json") {
		if cp != nil {
			fmt.Fprintf(os.Stderr, "pre-upgrade checkpoint of %s (%s → %s): %s\n", stack, cp.From, cp.To, cp)
		}
		return err
	}
	ok := err == nil
	code := automation.ExitCode(err)
	e := automation.Event{Time: time.Now().UTC(), Type: automation.EventResult, Stack: stack, Operation: operation,
		OK: &ok, ExitCode: &code, Checkpoint: cp, Released: more.Released}
	if err != nil {
		e.Error = err.Error()
	}
	if len(outputs) > 0 {
		e.Outputs = map[string]any{}
		for k, v := range outputs {
			if v.Secret {
				e.Outputs[k] = "[secret]"
			} else {
				e.Outputs[k] = v.Value
			}
		}
	}
	automation.NDJSON(os.Stdout).Emit(e)
	return err
}

// outputsOf returns a result's outputs; nil for no result.
func outputsOf(r *automation.Result) auto.OutputMap {
	if r == nil {
		return nil
	}
	return r.Outputs
}

// withDriver runs f with a driver and closes it.
func withDriver(cliContext *cli.Context, f func(*automation.Driver) error) error {
	if err := checkDurations(cliContext); err != nil {
		return err
	}
	d, err := newDriver(cliContext)
	if err != nil {
		var usage *automation.UsageError
		if errors.As(err, &usage) {
			return err
		}
		return &automation.UsageError{Err: err}
	}
	defer func() { _ = d.Close() }()
	return f(d)
}

// printEvent prints body, which marshals to a JSON object, as one NDJSON event: time, type and
// stack (when not empty) first, then body's own fields. body must not have those three.
func printEvent(typ, stack string, body any) {
	head, _ := json.Marshal(struct {
		Time  time.Time `json:"time"`
		Type  string    `json:"type"`
		Stack string    `json:"stack,omitempty"`
	}{time.Now().UTC(), typ, stack})
	fields, err := json.Marshal(body)
	if err != nil || len(fields) < 3 || fields[0] != '{' {
		fmt.Println(string(head))
		return
	}
	fmt.Printf("%s,%s\n", head[:len(head)-1], fields[1:])
}

// targetNames are the targets' names, for help texts: "ec2-spot or vps".
func targetNames() string {
	var names []string
	for _, t := range automation.Targets() {
		names = append(names, t.Name)
	}
	return strings.Join(names, " or ")
}
