package vps

import (
	"strings"

	"github.com/clawdeploy/clawdeploy/targets"
)

// Risk implements targets.Target: the launch command replaced or deleted runs the setup again,
// which restarts the gateway. Nothing of the program holds data: that is on the host's disk.
func (Target) Risk(c targets.Change) targets.Risk {
	if c.Gone() && c.Type == "command:remote:Command" && strings.HasSuffix(c.URN, "-launch") {
		return targets.Risk{Class: targets.RiskDowntime, Reason: "the setup runs again on the host: the gateway restarts" + c.ForcedBy(nil),
			DowntimeMinutes: 1}
	}
	return targets.Risk{}
}
