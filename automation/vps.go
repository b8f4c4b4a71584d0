package automation

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
	"golang.org/x/crypto/ssh"

	"github.com/clawdeploy/clawdeploy"
	"github.com/clawdeploy/clawdeploy/components"
	"github.com/clawdeploy/clawdeploy/infra"
	"github.com/clawdeploy/clawdeploy/journal"
	"github.com/clawdeploy/clawdeploy/ordering"
	"github.com/clawdeploy/clawdeploy/setup"
	"github.com/clawdeploy/clawdeploy/sshexec"
)

// The vps target: its stages, the launch `up --retry` replaces, the finder of its interrupted
// creations, and the setup wait over SSH.

// VPSStages are the vps stages of DESIGN.md: openrouter_key_created only with a provisioning
// key, the ordering stages only for a VPS ordered from a provider (clawdeploy orders it before
// the engine runs, so the OpenRouter key is made after them).
var VPSStages = Stages{
	Order: slices.Concat([]string{"ssh_key_generated", StageOpenRouterKeyCreated}, ordering.Stages,
		[]string{"ssh_ready", StageSetupLaunched, StageSetupComplete}),
	ByType: map[string]string{
		components.TypeSSHKey:        "ssh_key_generated",
		components.TypeOpenRouterKey: StageOpenRouterKeyCreated,
		components.TypeSSHAccess:     "ssh_ready",
		components.TypeVPSSetup:      StageSetupLaunched,
	},
	Optional: append([]string{StageOpenRouterKeyCreated}, ordering.Stages...),
}

// StageOpenRouterKeyCreated is the optional vps stage of the deployment's own OpenRouter key.
const StageOpenRouterKeyCreated = "openrouter_key_created"

// VPSLaunchURN is the URN of a vps stack's launch command: `up --retry` replaces it, which
// launches the setup script again.
func VPSLaunchURN(stack string) string {
	return "urn:pulumi:" + stack + "::" + clawdeploy.Project + "::" + components.TypeVPSSetup + "$command:remote:Command::" +
		infra.NameVPSSetup + "-launch"
}

// VPSFinder settles the vps program's interrupted creations. None of them leaves anything
// behind that could be lost or doubled by creating it again: a key pair is computed in the
// engine, the key authorization appends a line only when it is missing, the launch does nothing
// on a host where the same script is running or complete, and the OpenRouter key's creation
// first deletes any key with the deployment's name (which only an interrupted creation leaves,
// its secret never received). So each is provably safe to clear, and the next `up` creates it
// again.
var VPSFinder = FinderFunc(func(_ context.Context, pc PendingCreate) (string, bool, error) {
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
	// Interval between polls; 0 means DefaultSetupPoll.
	Interval time.Duration
	// Budget for the whole wait; 0 means DefaultSetupTimeout.
	Budget time.Duration
	// PollTimeout bounds each poll, dials and command together; 0 means DefaultPollTimeout. A
	// host that accepts and then never answers costs one poll, not the whole budget.
	PollTimeout time.Duration
	// Dialer dials each poll; its zero value retries a few times with backoff inside the poll's
	// bound, and cuts off a command that prints more than sshexec.DefaultMaxOutput.
	Dialer sshexec.Dialer
}

// DefaultPollTimeout bounds one poll of a vps host.
const DefaultPollTimeout = 30 * time.Second

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
	return poll(ctx, w.Interval, w.Budget, report, func(ctx context.Context) (setup.Status, error) {
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
			return setup.Status{}, errStopPolling{err}
		}
		if err != nil {
			return setup.Status{}, err
		}
		return setup.ParseStatus(out)
	})
}

// vpsPinHostKey trusts a host's key on first contact, and only then: when the stack allows
// unknown host keys (vps_allow_unknown_host_key) and none is pinned yet, it reads the key the
// host presents (without logging in) and sets it as vps_host_key. Every later connection, the
// engine's and the driver's polls, checks that key and refuses another.
func vpsPinHostKey(ctx context.Context, d *Driver, stack string, s auto.Stack) error {
	config, err := s.GetAllConfig(ctx)
	if err != nil {
		return fmt.Errorf("reading the configuration of stack %s: %w", stack, err)
	}
	value := func(key string) string { return strings.TrimSpace(config[fullKey(key)].Value) }
	allow, _ := strconv.ParseBool(value(infra.KeyVPSAllowUnknownHostKey))
	if !allow || value(infra.KeyVPSHostKey) != "" {
		return nil
	}
	port := value(infra.KeyVPSPort)
	if port == "" {
		port = strconv.Itoa(infra.DefaultVPSPort)
	}
	address := net.JoinHostPort(value(infra.KeyVPSHost), port)
	key, err := sshexec.ScanHostKey(ctx, address, 15*time.Second)
	if err != nil {
		return err
	}
	d.emit(stack, Event{Type: EventDiagnostic, Severity: "warning", Message: fmt.Sprintf(
		"trusting the host key %s of %s on first contact (vps_allow_unknown_host_key) and pinning it as vps_host_key: "+
			"a host presenting another key is refused from now on", fingerprint(key), address)})
	return d.setConfig(ctx, stack, "", ConfigInput{Values: map[string]string{infra.KeyVPSHostKey: key}})
}

// fingerprint is a public key's SHA256 fingerprint, as ssh-keygen -l prints it.
func fingerprint(authorizedKey string) string {
	k, err := sshexec.ParseHostKey(authorizedKey)
	if err != nil {
		return authorizedKey
	}
	return ssh.FingerprintSHA256(k)
}

// vpsBeforeEngine readies the host before every up's engine: an ordered VPS is ordered,
// delivered and rebuilt first (vpsOrder), then a host key trusted on first contact is pinned.
func vpsBeforeEngine(ctx context.Context, d *Driver, h *hold, s auto.Stack) error {
	if err := vpsOrder(ctx, d, h, s); err != nil {
		return err
	}
	return vpsPinHostKey(ctx, d, h.stack, s)
}

// vpsConfig reads a vps stack's configuration as the program will.
func vpsConfig(ctx context.Context, d *Driver, s auto.Stack) (*infra.VPSConfig, error) {
	config, err := s.GetAllConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the configuration of stack %s: %w", s.Name(), err)
	}
	values, secrets := flatten(config)
	cfg, err := infra.ReadVPSConfig(d.projectName, s.Name(), values, secrets)
	if err != nil {
		return nil, &ConfigError{Err: err}
	}
	return cfg, nil
}

// vpsProvider returns the provider an ordered VPS comes from: one case per vps_provider.
func vpsProvider(cfg *infra.VPSConfig) (ordering.Provider, error) {
	switch cfg.Provider {
	case infra.VPSProviderOVH:
		return ordering.NewOVH(*cfg.OVH)
	}
	return nil, fmt.Errorf("vps_provider %q orders nothing", cfg.Provider)
}

// vpsOrder takes an ordered VPS through the ordering stages, from where the journal's record of
// its order stands (ordering.Order records every step there as it happens), and points the
// stack at it: vps_host its address, its host key trusted on first contact (the rebuild made a
// new one) and pinned from then on. The deployment's login key, which the rebuild installs, is
// made first (ssh_key_generated) and kept as the secret vps_ssh_private_key, unless one is set.
// A VPS already ordered and pointed at costs no call.
func vpsOrder(ctx context.Context, d *Driver, h *hold, s auto.Stack) error {
	cfg, err := vpsConfig(ctx, d, s)
	if err != nil || !cfg.Ordered() {
		return err
	}
	st, err := hostOrder(h)
	if err != nil {
		return err
	}
	if st.Ready() && cfg.Host == st.IP && cfg.PrivateKey != nil {
		return nil
	}
	tracker := newStageTracker(d.profile.stages, h.record.Stage)
	if cfg.PrivateKey == nil {
		key, err := newLoginKey()
		if err != nil {
			return err
		}
		if err := d.setConfig(ctx, h.stack, "", ConfigInput{Secrets: map[string]string{infra.KeyVPSSSHPrivateKey: key}}); err != nil {
			return err
		}
		if cfg, err = vpsConfig(ctx, d, s); err != nil {
			return err
		}
	}
	h.completed(tracker, "ssh_key_generated")
	signer, err := ssh.ParsePrivateKey([]byte(cfg.PrivateKey.Reveal()))
	if err != nil {
		return &ConfigError{Err: fmt.Errorf("vps_ssh_private_key: %w", err)}
	}
	provider, err := vpsProvider(cfg)
	if err != nil {
		return &ConfigError{Err: err}
	}
	o := &ordering.Order{
		Provider:    provider,
		PublicKey:   strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey()))) + " clawdeploy-" + h.stack,
		Description: "clawdeploy " + h.stack,
		Save: func(st ordering.State) error {
			data, err := json.Marshal(st)
			if err != nil {
				return err
			}
			return h.update(journal.Change{HostOrder: ptr(string(data))})
		},
		Stage: func(stage string) { h.completed(tracker, stage) },
		Ordering: func(placed bool) error {
			if placed {
				return h.update(journal.Change{Status: ptr(journal.Ordering)})
			}
			return h.update(journal.Change{Status: ptr(journal.Provisioning)})
		},
		Note:            func(msg string) { d.note(h.stack, "%s", msg) },
		Poll:            d.orderPoll,
		DeliveryTimeout: cfg.DeliveryTimeout,
		Now:             d.now,
	}
	if err := o.Run(ctx, &st); err != nil {
		return err
	}
	if cfg.Host == st.IP {
		return nil
	}
	// The rebuilt VPS's host key is new: trusted at the first connection, pinned after it.
	return d.setConfig(ctx, h.stack, "", ConfigInput{Values: map[string]string{
		infra.KeyVPSHost: st.IP, infra.KeyVPSHostKey: "", infra.KeyVPSAllowUnknownHostKey: "true",
	}})
}

// hostOrder is the journal's record of where the deployment's VPS order stands; empty for a
// host the user brings or one not ordered yet.
func hostOrder(h *hold) (ordering.State, error) {
	var st ordering.State
	if h.record.HostOrder == "" {
		return st, nil
	}
	if err := json.Unmarshal([]byte(h.record.HostOrder), &st); err != nil {
		return st, fmt.Errorf("the journal's record of the VPS order of %s is damaged: %s: %w", h.stack, h.record.HostOrder, err)
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

// vpsRelease stops the renewal of the VPS a deployment ordered, after its destroy's engine, and
// reports what was done and what the account holder still has to confirm. An order that was
// placed but never delivered (or whose id was lost) cannot be released here: the destroy fails,
// saying which order to cancel, rather than leave it billing silently.
func vpsRelease(ctx context.Context, d *Driver, h *hold, s auto.Stack) (*ordering.Release, error) {
	st, err := hostOrder(h)
	if err != nil {
		return nil, err
	}
	if st.CheckoutStarted.IsZero() && st.OrderID == 0 && st.Service == "" {
		return nil, nil // nothing was ordered
	}
	cfg, err := vpsConfig(ctx, d, s)
	if err != nil {
		return nil, err
	}
	provider, err := vpsProvider(cfg)
	if err != nil {
		return nil, &ConfigError{Err: err}
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
			"in the %s manager (it bills once delivered), or run destroy again once it is delivered", h.stack, what, st.Provider)
	}
	r, err := provider.Release(ctx, st.Service)
	if err != nil {
		return nil, fmt.Errorf("the resources of %s are deleted, but releasing VPS %s failed (it still renews; run destroy again): %w",
			h.stack, st.Service, err)
	}
	for _, done := range r.Done {
		d.note(h.stack, "%s", done)
	}
	for _, confirm := range r.ToConfirm {
		d.warn(h.stack, "to confirm by the account holder: %s", confirm)
	}
	return &r, nil
}
