package automation

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"golang.org/x/crypto/ssh"

	"github.com/clawdeploy/clawdeploy"
	"github.com/clawdeploy/clawdeploy/components"
	"github.com/clawdeploy/clawdeploy/infra"
	"github.com/clawdeploy/clawdeploy/setup"
	"github.com/clawdeploy/clawdeploy/sshexec"
)

// The vps target: its stages, the launch `up --retry` replaces, the finder of its interrupted
// creations, and the setup wait over SSH.

// VPSStages are the vps stages of DESIGN.md; openrouter_key_created only with a provisioning key.
var VPSStages = Stages{
	Order: []string{"ssh_key_generated", StageOpenRouterKeyCreated, "ssh_ready", StageSetupLaunched, StageSetupComplete},
	ByType: map[string]string{
		components.TypeSSHKey:        "ssh_key_generated",
		components.TypeOpenRouterKey: StageOpenRouterKeyCreated,
		components.TypeSSHAccess:     "ssh_ready",
		components.TypeVPSSetup:      StageSetupLaunched,
	},
	Optional: []string{StageOpenRouterKeyCreated},
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
		out, err := w.Dialer.Run(pollCtx, target, setup.PollCommand(root))
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
