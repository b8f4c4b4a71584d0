package cloudinit

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
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
	var problems []string
	check := func(ok bool, field, value, allowed string) {
		if !ok {
			problems = append(problems, fmt.Sprintf("%s must be %s, got %q", field, allowed, value))
		}
	}
	check(stackPattern.MatchString(a.Stack), "Stack", a.Stack, "a stack name")
	check(safePattern.MatchString(a.Image), "Image", a.Image, "an image reference without spaces, quotes or $")
	check(wordPattern.MatchString(a.OnboardAuthChoice), "OnboardAuthChoice", a.OnboardAuthChoice,
		"letters, digits and dashes")
	if len(problems) > 0 {
		return fmt.Errorf("cloudinit: invalid vps arguments: %s", strings.Join(problems, "; "))
	}
	return nil
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

// vpsFiles are the files of files/ a vps needs, and where they go.
var vpsFiles = []staticFile{
	{"files/lib.sh", LibexecDir + "/lib.sh", "0644"},
	{"files/openclaw-secrets.sh", LibexecDir + "/openclaw-secrets.sh", "0755"},
	{"files/openclaw-start.sh", LibexecDir + "/openclaw-start.sh", "0755"},
	{"files/openclaw-install-compose.sh", LibexecDir + "/openclaw-install-compose.sh", "0755"},
	{"files/auto-approve-devices.sh", LibexecDir + "/auto-approve-devices.sh", "0755"},
	{"files/docker-compose.yaml", "/etc/openclaw/docker-compose.yaml", "0644"},
	{"files/systemd/vps/openclaw.service", UnitDir + "/openclaw.service", "0644"},
}

// VPSFiles returns the files a vps needs besides the setup script and its settings: the scripts,
// the compose file, the gateway's unit, and the secrets file holding secrets (variable name →
// value), mode 0600.
func VPSFiles(secrets map[string]string) ([]File, error) {
	files, err := read(vpsFiles)
	if err != nil {
		return nil, err
	}
	content, err := secretsFile(secrets)
	if err != nil {
		return nil, err
	}
	return append(files, File{Path: SecretsFile, Mode: "0600", Content: content}), nil
}

var variablePattern = regexp.MustCompile(`^[A-Z_][A-Z0-9_]*$`)

// secretsFile returns the KEY=value lines of the secrets file, sorted. A value is taken
// verbatim to the end of its line, so it may hold anything but a line break; errors name the
// variable, never the value.
func secretsFile(secrets map[string]string) (string, error) {
	var b strings.Builder
	for _, name := range slices.Sorted(maps.Keys(secrets)) {
		value := secrets[name]
		if !variablePattern.MatchString(name) {
			return "", fmt.Errorf("cloudinit: secret name %q is not an environment variable name", name)
		}
		if strings.ContainsAny(value, "\n\r\x00") {
			return "", fmt.Errorf("cloudinit: the value of secret %s holds a line break or a NUL", name)
		}
		fmt.Fprintf(&b, "%s=%s\n", name, value)
	}
	return b.String(), nil
}
