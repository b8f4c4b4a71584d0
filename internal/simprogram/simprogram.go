// Package simprogram holds the programs and the waiter the engine tests run on the simulated
// provider.
package simprogram

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/clawdeploy/clawdeploy/automation"
	"github.com/clawdeploy/clawdeploy/cmd/clawdeploy/commands"
	"github.com/clawdeploy/clawdeploy/components"
	"github.com/clawdeploy/clawdeploy/internal/simprovider"
	"github.com/clawdeploy/clawdeploy/setup"
	"github.com/clawdeploy/clawdeploy/targets"
	"github.com/clawdeploy/clawdeploy/targets/vps"
)

// Thing is a resource of the simulated package.
type Thing struct {
	pulumi.CustomResourceState
	Value pulumi.StringOutput `pulumi:"value"`
}

// ThingType is Thing's type token.
const ThingType = "sim:index:Thing"

// ThingNames are the six resources of Six, in dependency order: two chains joined at the end.
var ThingNames = []string{"base", "left", "right", "left-2", "right-2", "top"}

// Six registers six Things, each tagged with its URN (its identity for the finder): base, then
// left and right on it, left-2 and right-2 on those, top on both. top is replaced
// delete-before-replace, as the ec2-spot instance is; the others create the replacement first.
func Six(ctx *pulumi.Context) error {
	deps := map[string][]string{
		"left": {"base"}, "right": {"base"}, "left-2": {"left"}, "right-2": {"right"}, "top": {"left-2", "right-2"},
	}
	made := map[string]*Thing{}
	for _, name := range ThingNames {
		var opts []pulumi.ResourceOption
		var on []pulumi.Resource
		for _, d := range deps[name] {
			on = append(on, made[d])
		}
		if len(on) > 0 {
			opts = append(opts, pulumi.DependsOn(on))
		}
		if name == "top" {
			opts = append(opts, pulumi.DeleteBeforeReplace(true))
		}
		urn := fmt.Sprintf("urn:pulumi:%s::%s::%s::%s", ctx.Stack(), ctx.Project(), ThingType, name)
		t := &Thing{}
		if err := ctx.RegisterResource(ThingType, name, pulumi.Map{
			"value": pulumi.String(name),
			"tags":  pulumi.StringMap{components.TagURN: pulumi.String(urn), components.TagStack: pulumi.String(ctx.Stack())},
		}, t, opts...); err != nil {
			return err
		}
		made[name] = t
	}
	ctx.Export("top", made["top"].ID())
	return nil
}

// SixRelaunch is what `up --retry` replaces in Six, as it replaces the ec2-spot instance: top.
func SixRelaunch(stack string) []string {
	return []string{fmt.Sprintf("urn:pulumi:%s::openclaw::%s::top", stack, ThingType)}
}

// SixStages are Six's stages: a Thing created, then the setup stages every target ends with
// (Six has no setup: NoWait completes them at once).
var SixStages = automation.Stages{
	Order:  []string{"thing_created", automation.StageSetupLaunched, automation.StageSetupComplete},
	ByType: map[string]string{ThingType: "thing_created"},
}

// InstanceWaiter stands in for an ec2-spot instance's boot: the setup completes once the
// instance named in the outputs exists in the simulated cloud.
func InstanceWaiter(cloud string) automation.Waiter {
	return automation.WaiterFunc(func(ctx context.Context, stack string, outputs auto.OutputMap, report func(setup.Status)) (setup.Status, error) {
		id, _ := outputs["instance_id"].Value.(string)
		c, err := simprovider.Load(cloud)
		if err != nil {
			return setup.Status{}, err
		}
		if _, ok := c.Resources[simprovider.Key("aws:ec2/instance:Instance", id)]; !ok {
			return setup.Status{State: setup.Failed, Reason: "instance " + id + " does not exist"},
				&automation.SetupError{Status: setup.Status{State: setup.Failed, Reason: "instance " + id + " does not exist"}}
		}
		report(setup.Status{State: setup.Running})
		st := setup.Status{State: setup.Complete, Token: "sim-token"}
		report(st)
		return st, nil
	})
}

// FromEnv returns the driver configuration the simulated driver runs with: SIMDRIVER_PROGRAM
// picks the program ("six", or "real" for ec2spot.Program), CLAWDEPLOY_SIM_CLOUD the cloud.
func FromEnv() commands.Config {
	cloud := os.Getenv(simprovider.EnvCloud)
	finder := Finder{Cloud: cloud}
	switch os.Getenv("SIMDRIVER_PROGRAM") {
	case "real":
		return commands.Config{Finder: finder, Waiter: InstanceWaiter(cloud), HostChecker: HostChecker{Cloud: cloud, Output: "instance_id"},
			Checkpointer: Checkpointer{Cloud: cloud}, FinalSnapshots: FinalSnapshots{Cloud: cloud}}
	case "vps":
		// The vps program launching the script in SIMDRIVER_VPS_SCRIPT on the tests' sshd,
		// polled every SIMDRIVER_VPS_POLL; the launch writes the host's files under
		// SIMDRIVER_VPS_FILES (never the test machine's /etc).
		script, err := os.ReadFile(os.Getenv("SIMDRIVER_VPS_SCRIPT"))
		if err != nil {
			panic(fmt.Sprintf("SIMDRIVER_VPS_SCRIPT: %v", err))
		}
		poll, err := time.ParseDuration(os.Getenv("SIMDRIVER_VPS_POLL"))
		if err != nil {
			panic(fmt.Sprintf("SIMDRIVER_VPS_POLL: %v", err))
		}
		files := os.Getenv("SIMDRIVER_VPS_FILES")
		if files == "" {
			panic("SIMDRIVER_VPS_FILES is not set")
		}
		// The program is the tests' (ProgramWith), so the target's own stages and relaunch are
		// named here, as the built-in vps target has them: without RelaunchURNs, up --retry would
		// replace nothing, as for any program a caller brings.
		return commands.Config{Program: vps.ProgramWith(vps.Host{Script: script, Root: files}), Stages: &vps.Stages,
			RelaunchURNs: vps.Target{}.Relaunch, Finder: vps.Finder, Waiter: vps.SSHWaiter{Interval: poll, Budget: time.Minute}}
	}
	return commands.Config{Program: Six, Stages: &SixStages, Finder: finder, Waiter: automation.NoWait, RelaunchURNs: SixRelaunch,
		HostChecker: HostChecker{Cloud: cloud, Output: "top"}}
}

// Checkpointer stands in for ec2spot.Checkpointer on the simulated cloud: the data volume's
// snapshot is taken in the cloud file, tagged as AWS's would be, and recorded as an op.
type Checkpointer struct{ Cloud string }

// Checkpoint implements automation.Checkpointer.
func (c Checkpointer) Checkpoint(_ context.Context, stack string, outputs auto.OutputMap, from, to string) (*automation.Checkpoint, error) {
	volume, _ := outputs["data_volume_id"].Value.(string)
	zone, _ := outputs["availability_zone"].Value.(string)
	id, err := simprovider.TakeSnapshot(c.Cloud, volume, map[string]string{
		"OpenClawData": "true", "OpenClawStack": stack, "OpenClawAz": zone, targets.TagCheckpoint: "pre-upgrade", "OpenClawImage": from,
	})
	if err != nil {
		return nil, err
	}
	return &automation.Checkpoint{From: from, To: to, At: time.Now().UTC(), Snapshot: id, Volume: volume}, nil
}

// HostChecker stands in for ec2spot.HostChecker on the simulated cloud: the host is the
// resource whose id the output names, down when it is gone (simprovider.Terminate).
type HostChecker struct {
	Cloud  string
	Output string
}

// Check implements automation.HostChecker.
func (h HostChecker) Check(_ context.Context, _ string, outputs auto.OutputMap) (automation.HostState, error) {
	id, _ := outputs[h.Output].Value.(string)
	c, err := simprovider.Load(h.Cloud)
	if err != nil {
		return automation.HostState{}, err
	}
	for _, r := range c.Resources {
		if r.ID == id {
			return automation.HostState{Host: id, Why: id + " runs"}, nil
		}
	}
	return automation.HostState{Host: id, Down: true, Why: id + " is terminated"}, nil
}

// SetupScript is a stand-in for openclaw-setup.sh that keeps the setup protocol (the markers,
// the ERR trap writing "FAILED: line N: command") and appends a line to $root/launches at each
// run, so the SSH path is tested without a host to set up. It runs for seconds; with fail, its
// line 7 fails. Its token is the one in the secrets file next to its settings, as the real
// script's is, or token-<pid> without one. The real script is tested under a fake root in
// package cloudinit.
func SetupScript(seconds int, fail bool) []byte {
	return setupScript(fmt.Sprintf("sleep %d", seconds), fail)
}

// GatedSetupScript is SetupScript running until the file gate exists, instead of for seconds: a
// test that must act while the setup runs opens the gate once it has, however slow the machine.
func GatedSetupScript(gate string) []byte {
	return setupScript(fmt.Sprintf("until [ -e %q ]; do sleep 0.1; done", gate), false)
}

// FailingOnceSetupScript is SetupScript failing at its first run on a host and completing at
// the next, as a setup that met a passing fault does.
func FailingOnceSetupScript() []byte {
	return setupScriptWith("true", `[ -e "$root/failed-once" ] || { touch "$root/failed-once"; false; } # the failing step, once`)
}

// setupScript is the sim's setup script with wait as its long step.
func setupScript(wait string, fail bool) []byte {
	step := "true"
	if fail {
		step = "false # the failing step"
	}
	return setupScriptWith(wait, step)
}

// setupScriptWith is the sim's setup script with wait as its long step, then step.
func setupScriptWith(wait, step string) []byte {
	return fmt.Appendf(nil, `#!/usr/bin/env bash
set -Eeuo pipefail
root=$OPENCLAW_SETUP_ROOT
trap 'printf "FAILED: line %%s: %%s\n" "$LINENO" "$BASH_COMMAND" > "$root/.openclaw-setup-error"' ERR
echo run >> "$root/launches"
%s
%s
token=$(sed -n 's/^OPENCLAW_GATEWAY_TOKEN=//p' "$(dirname "${OPENCLAW_ENV_FILE:-/nonexistent/x}")/secrets.env" 2>/dev/null || true)
printf '%%s\n' "${token:-token-$$}" > "$root/.openclaw-setup-token"
cp "$root/.openclaw-setup-started" "$root/.openclaw-setup-complete"
`, wait, step)
}

// FinalSnapshots stands in for ec2spot.FinalSnapshots on the simulated cloud: the snapshot
// the simulated volume's deletion left (its tags, the URN among them, and no other mark) is
// tagged CreatedBy=final-on-destroy.
type FinalSnapshots struct{ Cloud string }

// MarkFinal implements automation.FinalSnapshots.
func (f FinalSnapshots) MarkFinal(_ context.Context, stack string, _ auto.OutputMap, _ time.Time) ([]string, error) {
	var marked []string
	err := simprovider.Change(f.Cloud, func(c *simprovider.Cloud) error {
		for id, s := range c.Snapshots {
			if s.Tags["OpenClawStack"] == stack && s.Tags["clawdeploy:urn"] != "" && s.Tags["CreatedBy"] == "" && s.Tags["SnapshotCreator"] == "" {
				s.Tags["CreatedBy"] = "final-on-destroy"
				c.Snapshots[id] = s
				marked = append(marked, id)
			}
		}
		return nil
	})
	return marked, err
}
