package automation

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"

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
	// Dialer dials each poll; its zero value retries a few times with backoff inside the budget.
	Dialer sshexec.Dialer
}

// TargetFromOutputs returns how to reach a vps stack's host, from its outputs.
func TargetFromOutputs(outputs auto.OutputMap) (sshexec.Target, string, error) {
	str := func(k string) string { s, _ := outputs[k].Value.(string); return s }
	port, _ := outputs["sshPort"].Value.(float64)
	t := sshexec.Target{
		Host:       str("sshHost"),
		Port:       int(port),
		User:       str("sshUser"),
		PrivateKey: []byte(str("sshPrivateKey")),
		HostKey:    str("sshHostKey"),
	}
	t.AllowUnknownHostKey = t.HostKey == ""
	if t.Host == "" || len(t.PrivateKey) == 0 {
		return t, "", errors.New("the stack has no sshHost or sshPrivateKey output to poll with")
	}
	return t, str("setupRoot"), nil
}

// Wait polls until COMPLETE, FAILED or the budget runs out.
func (w SSHWaiter) Wait(ctx context.Context, stack string, outputs auto.OutputMap, report func(setup.Status)) (setup.Status, error) {
	target, root, err := TargetFromOutputs(outputs)
	if err != nil {
		return setup.Status{}, fmt.Errorf("stack %s: %w", stack, err)
	}
	return poll(ctx, w.Interval, w.Budget, report, func(ctx context.Context) (setup.Status, error) {
		out, err := w.Dialer.Run(ctx, target, setup.PollCommand(root))
		var hostKey *sshexec.HostKeyError
		if errors.As(err, &hostKey) {
			return setup.Status{}, errStopPolling{err} // not the host we set up: waiting will not change that
		}
		if err != nil {
			return setup.Status{}, err
		}
		return setup.ParseStatus(out)
	})
}
