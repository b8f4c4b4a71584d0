// Package vps is the vps target: a host reachable over SSH, given (vps_host) or ordered from a
// provider (vps_provider). It owns its program (program.go), its configuration (config.go, and
// project.yaml, the project definition the driver builds in), its stages, the launch `up --retry` replaces, the finder of
// its interrupted creations, the setup wait over SSH, the order of an ordered VPS (package
// ordering) before the engine and its release on destroy, and the host key trusted on first
// contact.
package vps

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"golang.org/x/crypto/ssh"

	"github.com/clawdeploy/clawdeploy"
	"github.com/clawdeploy/clawdeploy/components"
	"github.com/clawdeploy/clawdeploy/journal"
	"github.com/clawdeploy/clawdeploy/ordering"
	"github.com/clawdeploy/clawdeploy/setup"
	"github.com/clawdeploy/clawdeploy/sshexec"
	"github.com/clawdeploy/clawdeploy/targets"
)

// Name is the target's name.
const Name = "vps"

// Target is the vps target.
type Target struct{}

var (
	_ targets.Target   = Target{}
	_ targets.Preparer = Target{}
	_ targets.Releaser = Target{}
)

// Name implements targets.Target.
func (Target) Name() string { return Name }

// Summary implements targets.Target.
func (Target) Summary() string {
	return `a host reachable over SSH as root or with passwordless sudo, given
(vps_host) or ordered from OVHcloud (vps_provider ovh): the setup
script is launched detached and polled; Docker is installed when
missing. Backend mode only.`
}

// Program implements targets.Target: Program.
func (Target) Program() pulumi.RunFunc { return Program }

// Stages implements targets.Target.
func (Target) Stages() targets.Stages { return Stages }

// Keys implements targets.Target: Keys.
func (Target) Keys() targets.Keys { return targets.Keys{Program: Keys, Help: Keys} }

// Check implements targets.Target: CheckConfig.
func (Target) Check(project, stack string, values map[string]string, secretKeys []string) error {
	return CheckConfig(project, stack, values, secretKeys)
}

// ProjectYAML implements targets.Target: ProjectYAML.
func (Target) ProjectYAML() []byte { return ProjectYAML }

// FromCheckout implements targets.Target: the vps target runs with its built-in project only.
func (Target) FromCheckout() bool { return false }

// NewWaiter implements targets.Target: an SSHWaiter.
func (Target) NewWaiter(poll, timeout time.Duration) targets.Waiter {
	return SSHWaiter{Interval: poll, Budget: timeout}
}

// Relaunch implements targets.Target: the launch command.
func (Target) Relaunch(stack string) []string { return []string{LaunchURN(stack)} }

// NewFinder implements targets.Target: Finder.
func (Target) NewFinder() targets.Finder { return Finder }

// Stages are the vps stages of DESIGN.md: openrouter_key_created only with a provisioning
// key, the ordering stages only for a VPS ordered from a provider (clawdeploy orders it before
// the engine runs, so the OpenRouter key is made after them).
var Stages = targets.Stages{
	Order: slices.Concat([]string{"ssh_key_generated", StageOpenRouterKeyCreated}, ordering.Stages,
		[]string{"ssh_ready", targets.StageSetupLaunched, targets.StageSetupComplete}),
	ByType: map[string]string{
		components.TypeSSHKey:        "ssh_key_generated",
		components.TypeOpenRouterKey: StageOpenRouterKeyCreated,
		components.TypeSSHAccess:     "ssh_ready",
		components.TypeVPSSetup:      targets.StageSetupLaunched,
	},
	Optional: append([]string{StageOpenRouterKeyCreated}, ordering.Stages...),
}

// StageOpenRouterKeyCreated is the optional vps stage of the deployment's own OpenRouter key.
const StageOpenRouterKeyCreated = "openrouter_key_created"

// LaunchURN is the URN of a vps stack's launch command: `up --retry` replaces it, which
// launches the setup script again.
func LaunchURN(stack string) string {
	return "urn:pulumi:" + stack + "::" + clawdeploy.Project + "::" + components.TypeVPSSetup + "$command:remote:Command::" +
		NameVPSSetup + "-launch"
}

// Finder settles the vps program's interrupted creations. None of them leaves anything
// behind that could be lost or doubled by creating it again: a key pair is computed in the
// engine, the key authorization appends a line only when it is missing, the launch does nothing
// on a host where the same script is running or complete, and the OpenRouter key's creation
// first deletes any key with the deployment's name (which only an interrupted creation leaves,
// its secret never received). So each is provably safe to clear, and the next `up` creates it
// again.
var Finder = targets.FinderFunc(func(_ context.Context, pc targets.PendingCreate) (string, bool, error) {
	switch pc.Type {
	case "tls:index/privateKey:PrivateKey", "command:remote:Command", "command:local:Command":
		return "", false, nil
	}
	return "", false, fmt.Errorf("no way to look up a %s of the vps program", pc.Type)
})

// SSHWaiter polls a vps host's setup markers over SSH: each poll is one connection running the
// protocol's poll command (setup.PollCommand) in one exec, logging in with the deployment's key
// and checking the pinned host key. A host that cannot be reached is polled again at the next
// interval; the budget bounds the whole wait.
type SSHWaiter struct {
	// Interval between polls; 0 means targets.DefaultSetupPoll.
	Interval time.Duration
	// Budget for the whole wait; 0 means targets.DefaultSetupTimeout.
	Budget time.Duration
	// PollTimeout bounds each poll, dials and command together; 0 means DefaultPollTimeout. A
	// host that accepts and then never answers costs one poll, not the whole budget.
	PollTimeout time.Duration
	// Dialer dials each poll; its zero value retries a few times with backoff inside the poll's
	// bound, and cuts off a command that prints more than sshexec.DefaultMaxOutput.
	Dialer sshexec.Dialer
}

// DefaultPollTimeout bounds one poll of a vps host: targets.PollBound, which Poll holds every
// poll to.
const DefaultPollTimeout = targets.PollBound

// TargetFromOutputs returns how to reach a vps stack's host, from its outputs.
func TargetFromOutputs(outputs auto.OutputMap) (sshexec.Target, string, error) {
	str := func(k string) string { s, _ := outputs[k].Value.(string); return s }
	port, _ := outputs["ssh_port"].Value.(float64)
	t := sshexec.Target{
		Host:       str("ssh_host"),
		Port:       int(port),
		User:       str("ssh_user"),
		PrivateKey: []byte(str("ssh_private_key")),
		HostKey:    str("ssh_host_key"),
	}
	t.AllowUnknownHostKey = t.HostKey == ""
	if t.Host == "" || len(t.PrivateKey) == 0 {
		return t, "", errors.New("the stack has no ssh_host or ssh_private_key output to poll with")
	}
	return t, str("setup_root"), nil
}

// Wait polls until COMPLETE, FAILED or the budget runs out.
func (w SSHWaiter) Wait(ctx context.Context, stack string, outputs auto.OutputMap, report func(setup.Status)) (setup.Status, error) {
	target, root, err := TargetFromOutputs(outputs)
	if err != nil {
		return setup.Status{}, fmt.Errorf("stack %s: %w", stack, err)
	}
	bound := w.PollTimeout
	if bound == 0 {
		bound = DefaultPollTimeout
	}
	return targets.Poll(ctx, w.Interval, w.Budget, report, func(ctx context.Context) (setup.Status, error) {
		pollCtx, cancel := context.WithTimeout(ctx, bound)
		defer cancel()
		// The host ends the poll by itself too, when this side gives up on it.
		out, err := w.Dialer.Run(pollCtx, target, setup.AsRoot(target.User, setup.Bounded(setup.PollCommand(root), bound)))
		if err != nil && ctx.Err() == nil && pollCtx.Err() != nil {
			err = fmt.Errorf("the poll did not answer within %s: %w", bound, err)
		}
		var (
			hostKey *sshexec.HostKeyError
			tooMuch *sshexec.OutputLimitError
		)
		if errors.As(err, &hostKey) || errors.As(err, &tooMuch) {
			// Not the host we set up, or not answering as the protocol does: waiting will not
			// change that.
			return setup.Status{}, targets.StopPolling(err)
		}
		if err != nil {
			return setup.Status{}, err
		}
		return setup.ParseStatus(out)
	})
}

// pinHostKey trusts a host's key on first contact, and only then: when the stack allows unknown
// host keys (vps_allow_unknown_host_key) and none is pinned yet, it reads the key the host
// presents (without logging in) and sets it as vps_host_key. Every later connection, the
// engine's and the driver's polls, checks that key and refuses another.
func pinHostKey(ctx context.Context, d targets.Deployment) error {
	config, err := d.Config(ctx)
	if err != nil {
		return err
	}
	value := func(key string) string { return strings.TrimSpace(config.Value(key)) }
	allow, _ := strconv.ParseBool(value(KeyVPSAllowUnknownHostKey))
	if !allow || value(KeyVPSHostKey) != "" {
		return nil
	}
	port := value(KeyVPSPort)
	if port == "" {
		port = strconv.Itoa(DefaultPort)
	}
	address := net.JoinHostPort(value(KeyVPSHost), port)
	key, err := sshexec.ScanHostKey(ctx, address, 15*time.Second)
	if err != nil {
		return err
	}
	d.Warn("trusting the host key %s of %s on first contact (vps_allow_unknown_host_key) and pinning it as vps_host_key: "+
		"a host presenting another key is refused from now on", fingerprint(key), address)
	return d.SetConfig(ctx, map[string]string{KeyVPSHostKey: key}, nil)
}

// fingerprint is a public key's SHA256 fingerprint, as ssh-keygen -l prints it.
func fingerprint(authorizedKey string) string {
	k, err := sshexec.ParseHostKey(authorizedKey)
	if err != nil {
		return authorizedKey
	}
	return ssh.FingerprintSHA256(k)
}

// BeforeEngine implements targets.Preparer: an ordered VPS is ordered, delivered and rebuilt
// first (order), then a host key trusted on first contact is pinned.
func (Target) BeforeEngine(ctx context.Context, l targets.Lease) error {
	if err := order(ctx, l); err != nil {
		return err
	}
	return pinHostKey(ctx, l)
}

// readConfig reads a vps stack's configuration as the program will.
func deploymentConfig(ctx context.Context, d targets.Deployment) (*Config, error) {
	config, err := d.Config(ctx)
	if err != nil {
		return nil, err
	}
	cfg, err := ReadConfig(d.Project(), d.Stack(), config.Values, config.SecretKeys)
	if err != nil {
		return nil, &targets.ConfigError{Err: err}
	}
	return cfg, nil
}

// providerOf returns the provider an ordered VPS comes from: one case per vps_provider.
func providerOf(cfg *Config) (ordering.Provider, error) {
	switch cfg.Provider {
	case ProviderOVH:
		return ordering.NewOVH(*cfg.OVH)
	}
	return nil, fmt.Errorf("vps_provider %q orders nothing", cfg.Provider)
}

// order takes an ordered VPS through the ordering stages, from where the journal's record of
// its order stands (ordering.Order records every step there as it happens), and points the
// stack at it: vps_host its address, its host key trusted on first contact (the rebuild made a
// new one) and pinned from then on. The deployment's login key, which the rebuild installs, is
// made first (ssh_key_generated) and kept as the secret vps_ssh_private_key, unless one is set.
// A VPS already ordered and pointed at costs no call.
func order(ctx context.Context, l targets.Lease) error {
	cfg, err := deploymentConfig(ctx, l)
	if err != nil || !cfg.Ordered() {
		return err
	}
	st, err := hostOrder(l)
	if err != nil {
		return err
	}
	if st.Ready() && cfg.Host == st.IP && cfg.PrivateKey != nil {
		return nil
	}
	if cfg.PrivateKey == nil {
		key, err := newLoginKey()
		if err != nil {
			return err
		}
		if err := l.SetConfig(ctx, nil, map[string]string{KeyVPSSSHPrivateKey: key}); err != nil {
			return err
		}
		if cfg, err = deploymentConfig(ctx, l); err != nil {
			return err
		}
	}
	l.Completed("ssh_key_generated")
	signer, err := ssh.ParsePrivateKey([]byte(cfg.PrivateKey.Reveal()))
	if err != nil {
		return &targets.ConfigError{Err: fmt.Errorf("vps_ssh_private_key: %w", err)}
	}
	provider, err := providerOf(cfg)
	if err != nil {
		return &targets.ConfigError{Err: err}
	}
	o := &ordering.Order{
		Provider:    provider,
		PublicKey:   strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey()))) + " clawdeploy-" + l.Stack(),
		Description: "clawdeploy " + l.Stack(),
		Save: func(st ordering.State) error {
			data, err := json.Marshal(st)
			if err != nil {
				return err
			}
			s := string(data)
			return l.Update(journal.Change{HostOrder: &s})
		},
		Stage: l.Completed,
		Ordering: func(placed bool) error {
			status := journal.Provisioning
			if placed {
				status = journal.Ordering
			}
			return l.Update(journal.Change{Status: &status})
		},
		Note:            func(msg string) { l.Note("%s", msg) },
		Poll:            l.OrderPoll(),
		DeliveryTimeout: cfg.DeliveryTimeout,
		Now:             l.Now,
	}
	if err := o.Run(ctx, &st); err != nil {
		return err
	}
	if cfg.Host == st.IP {
		return nil
	}
	// The rebuilt VPS's host key is new: trusted at the first connection, pinned after it.
	return l.SetConfig(ctx, map[string]string{
		KeyVPSHost: st.IP, KeyVPSHostKey: "", KeyVPSAllowUnknownHostKey: "true",
	}, nil)
}

// hostOrder is the journal's record of where the deployment's VPS order stands; empty for a
// host the user brings or one not ordered yet.
func hostOrder(l targets.Lease) (ordering.State, error) {
	var st ordering.State
	record := l.Record()
	if record.HostOrder == "" {
		return st, nil
	}
	if err := json.Unmarshal([]byte(record.HostOrder), &st); err != nil {
		return st, fmt.Errorf("the journal's record of the VPS order of %s is damaged: %s: %w", l.Stack(), record.HostOrder, err)
	}
	return st, nil
}

// newLoginKey makes the ed25519 key an ordered VPS is rebuilt with, in OpenSSH form.
func newLoginKey() (string, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", err
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		return "", err
	}
	return string(pem.EncodeToMemory(block)), nil
}

// Release implements targets.Releaser: it stops the renewal of the VPS a deployment ordered,
// after its destroy's engine, and reports what was done and what the account holder still has to confirm. An order that was
// placed but never delivered (or whose id was lost) cannot be released here: the destroy fails,
// saying which order to cancel, rather than leave it billing silently.
func (Target) Release(ctx context.Context, l targets.Lease) (*ordering.Release, error) {
	st, err := hostOrder(l)
	if err != nil {
		return nil, err
	}
	if st.CheckoutStarted.IsZero() && st.OrderID == 0 && st.Service == "" {
		return nil, nil // nothing was ordered
	}
	cfg, err := deploymentConfig(ctx, l)
	if err != nil {
		return nil, err
	}
	provider, err := providerOf(cfg)
	if err != nil {
		return nil, &targets.ConfigError{Err: err}
	}
	if st.Service == "" && st.OrderID != 0 {
		delivery, err := provider.Delivery(ctx, st.OrderID)
		if err != nil {
			return nil, err
		}
		st.Service = delivery.Service
	}
	if st.Service == "" {
		what := fmt.Sprintf("order %d", st.OrderID)
		if st.OrderID == 0 {
			what = fmt.Sprintf("the order the checkout of cart %s at %s may have placed", st.CartID, st.CheckoutStarted.UTC().Format(time.RFC3339))
		}
		return nil, fmt.Errorf("the resources of %s are deleted, but its VPS is not delivered, so it cannot be released: cancel %s "+
			"in the %s manager (it bills once delivered), or run destroy again once it is delivered", l.Stack(), what, st.Provider)
	}
	r, err := provider.Release(ctx, st.Service)
	if err != nil {
		return nil, fmt.Errorf("the resources of %s are deleted, but releasing VPS %s failed (it still renews; run destroy again): %w",
			l.Stack(), st.Service, err)
	}
	for _, done := range r.Done {
		l.Note("%s", done)
	}
	for _, confirm := range r.ToConfirm {
		l.Warn("to confirm by the account holder: %s", confirm)
	}
	return &r, nil
}
