package cloudinit

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/clawdeploy/clawdeploy/names"
)

// A vps has no cloud-init: the launch of the setup script writes what a bare host needs, in its
// one SSH session (setup.Launch's Env and Files): the settings (EnvFile), the scripts, the
// compose file, the gateway's unit and the secrets file. There is no data volume, restore,
// backup, spot watcher or CloudWatch agent on a vps: OpenClaw's data stays on the host's disk.

// SecretsFile is where a vps keeps the gateway's secrets: KEY=value lines, mode 0600, outside the
// data folder (so never in a copy of it). openclaw-secrets.sh copies them to tmpfs at every start
// of the gateway, as it copies SSM's on ec2-spot.
const SecretsFile = "/etc/openclaw/secrets.env"

// VPSArgs are what a vps host's settings need to know. No secret is among them.
type VPSArgs struct {
	Stack string
	// Image is the gateway's container image.
	Image string
	// OnboardAuthChoice is `openclaw onboard --auth-choice`; empty lets OpenClaw decide.
	OnboardAuthChoice string
}

// Validate checks every argument; VPSSettings calls it first.
func (a VPSArgs) Validate() error {
	var p problems
	p.checkGateway(a.Stack, a.Image, a.OnboardAuthChoice)
	return p.err()
}

// VPSSettings returns the settings file of a vps (EnvFile there), after validating a.
func VPSSettings(a VPSArgs) (string, error) {
	if err := a.Validate(); err != nil {
		return "", err
	}
	return execute("openclaw-vps.env.tmpl", struct {
		VPSArgs
		DataDir, SecretsFile string
		GatewayPort          int
	}{a, DataDir, SecretsFile, GatewayPort})
}

// vpsUnit is the gateway's unit on a vps: it needs docker only, no volume.
var vpsUnit = staticFile{"files/systemd/vps/openclaw.service", UnitDir + "/openclaw.service", "0644", true}

// VPSFiles returns the files a vps needs besides the setup script and its settings: the scripts,
// the compose file, the gateway's unit, and the secrets file holding secrets (variable name →
// value), mode 0600.
func VPSFiles(secrets map[string]string) ([]File, error) {
	list := []staticFile{}
	for _, f := range staticFiles {
		if f.vps {
			list = append(list, f)
		}
	}
	files, err := read(append(list, vpsUnit))
	if err != nil {
		return nil, err
	}
	content, err := secretsFile(secrets)
	if err != nil {
		return nil, err
	}
	return append(files, File{Path: SecretsFile, Mode: "0600", Content: content}), nil
}

// secretsFile returns the KEY=value lines of the secrets file, sorted. A value is taken
// verbatim to the end of its line, so it may hold anything but a line break; errors name the
// variable, never the value.
func secretsFile(secrets map[string]string) (string, error) {
	var b strings.Builder
	for _, name := range slices.Sorted(maps.Keys(secrets)) {
		value := secrets[name]
		if !names.IsEnvVar(name) {
			return "", fmt.Errorf("cloudinit: secret name %q is not an environment variable name", name)
		}
		if strings.ContainsAny(value, "\n\r\x00") {
			return "", fmt.Errorf("cloudinit: the value of secret %s holds a line break or a NUL", name)
		}
		fmt.Fprintf(&b, "%s=%s\n", name, value)
	}
	return b.String(), nil
}
