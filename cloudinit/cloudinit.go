package cloudinit

import (
	"bytes"
	"embed"
	"fmt"
	"path"
	"regexp"
	"strings"
	"text/template"

	"github.com/clawdeploy/clawdeploy/names"
	"github.com/clawdeploy/clawdeploy/setup"
)

//go:embed templates files
var content embed.FS

var templates = template.Must(template.New("").Funcs(template.FuncMap{"indent": indent}).
	ParseFS(content, "templates/*.tmpl"))

// Paths on the instance.
const (
	// EnvFile is the settings file every script and unit reads.
	EnvFile = "/etc/openclaw/openclaw.env"
	// LibexecDir holds the scripts.
	LibexecDir = "/usr/local/libexec/openclaw"
	// UnitDir holds the systemd units.
	UnitDir = "/etc/systemd/system"
	// DataDir is where the data volume is mounted.
	DataDir = "/opt/openclaw"
	// BackupObject is the S3 key of the latest backup; older backups are its earlier versions.
	BackupObject = "backups/latest.tar.gz"
	// BackupRequestObject is the S3 key where the driver asks the instance for a backup (package
	// backup's Request); the spot watcher polls it. It is under the backup prefix, which the
	// instance may read.
	BackupRequestObject = "backups/requests/backup"
	// GatewayPort is the gateway's port, on the instance's loopback.
	GatewayPort = 18789
	// MinBackupIntervalMinutes and MaxBackupIntervalMinutes bound the backup timer's interval.
	MinBackupIntervalMinutes = 5
	MaxBackupIntervalMinutes = 1440
)

// Log is one log the CloudWatch agent ships: its name (the log group is /openclaw/<stack>/<name>)
// and the file on the instance.
type Log struct {
	Name string
	Path string
}

// Logs are the logs of the instance. The units append to these files (a test keeps them in step)
// and the Monitoring component creates a log group for each.
var Logs = []Log{
	{Name: "openclaw", Path: "/var/log/openclaw/openclaw.log"},
	{Name: "setup", Path: setup.DefaultRoot + "/" + setup.LogFile},
	{Name: "backup", Path: "/var/log/openclaw/backup.log"},
	{Name: "restore", Path: "/var/log/openclaw/restore.log"},
	{Name: "spot-watch", Path: "/var/log/openclaw/spot-watch.log"},
	{Name: "cloud-init", Path: "/var/log/cloud-init-output.log"},
}

// Args are what the user-data needs to know: names of resources that exist by the time the
// instance boots. No secret is ever among them.
type Args struct {
	// Stack is the Pulumi stack name.
	Stack string
	// Region is the AWS region.
	Region string
	// VolumeID is the data volume, found on the instance by this id.
	VolumeID string
	// BackupBucket is the S3 bucket backups go to.
	BackupBucket string
	// SecretsPath is the SSM path whose parameters become the gateway's environment.
	SecretsPath string
	// StatusParameter is the SSM parameter the setup script publishes its status to.
	StatusParameter string
	// CloudWatchConfigParameter holds the CloudWatch agent's configuration.
	CloudWatchConfigParameter string
	// Image is the gateway's container image.
	Image string
	// BackupIntervalMinutes is how often the backup timer fires.
	BackupIntervalMinutes int
	// OnboardAuthChoice is `openclaw onboard --auth-choice`, chosen from the provider keys that
	// are configured; empty lets OpenClaw decide.
	OnboardAuthChoice string
}

var (
	volumePattern    = regexp.MustCompile(`^vol-([0-9a-f]{8}|[0-9a-f]{17})$`)
	bucketPattern    = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
	parameterPattern = regexp.MustCompile(`^/[A-Za-z0-9_./-]+$`)
	// safePattern is what a value of the settings file may hold: nothing a shell, systemd or
	// compose would interpret.
	safePattern = regexp.MustCompile(`^[A-Za-z0-9._:/@+,=-]+$`)
	wordPattern = regexp.MustCompile(`^[A-Za-z0-9-]*$`)
)

// Validate checks every argument; Render calls it first.
func (a Args) Validate() error {
	var p problems
	p.checkGateway(a.Stack, a.Image, a.OnboardAuthChoice)
	p.check(names.IsRegion(a.Region), "Region", a.Region, "an AWS region")
	p.check(volumePattern.MatchString(a.VolumeID), "VolumeID", a.VolumeID, "an EBS volume id")
	p.check(bucketPattern.MatchString(a.BackupBucket), "BackupBucket", a.BackupBucket, "an S3 bucket name")
	p.check(parameterPattern.MatchString(a.SecretsPath), "SecretsPath", a.SecretsPath, "an SSM path")
	p.check(parameterPattern.MatchString(a.StatusParameter), "StatusParameter", a.StatusParameter, "an SSM parameter name")
	p.check(parameterPattern.MatchString(a.CloudWatchConfigParameter), "CloudWatchConfigParameter",
		a.CloudWatchConfigParameter, "an SSM parameter name")
	p.check(a.BackupIntervalMinutes >= MinBackupIntervalMinutes && a.BackupIntervalMinutes <= MaxBackupIntervalMinutes,
		"BackupIntervalMinutes", fmt.Sprint(a.BackupIntervalMinutes),
		fmt.Sprintf("between %d and %d", MinBackupIntervalMinutes, MaxBackupIntervalMinutes))
	return p.err()
}

// problems collects what is wrong with arguments, one message per field.
type problems []string

func (p *problems) check(ok bool, field, value, allowed string) {
	if !ok {
		*p = append(*p, fmt.Sprintf("%s must be %s, got %q", field, allowed, value))
	}
}

// checkGateway checks the arguments both targets' settings carry.
func (p *problems) checkGateway(stack, image, authChoice string) {
	p.check(names.IsStack(stack), "Stack", stack, "a stack name")
	p.check(safePattern.MatchString(image), "Image", image, "an image reference without spaces, quotes or $")
	p.check(wordPattern.MatchString(authChoice), "OnboardAuthChoice", authChoice, "letters, digits and dashes")
}

func (p problems) err() error {
	if len(p) == 0 {
		return nil
	}
	return fmt.Errorf("cloudinit: invalid arguments: %s", strings.Join(p, "; "))
}

// File is one file cloud-init writes (or, on a vps, the launch).
type File = setup.File

// staticFile is a file of files/ and where it goes; vps says a vps gets it too.
type staticFile struct {
	src, dst, mode string
	vps            bool
}

// read returns the files of list with their content.
func read(list []staticFile) ([]File, error) {
	files := make([]File, 0, len(list))
	for _, f := range list {
		b, err := content.ReadFile(f.src)
		if err != nil {
			return nil, fmt.Errorf("cloudinit: reading %s: %w", f.src, err)
		}
		text := string(b)
		if strings.HasSuffix(f.src, ".sh") {
			text = withoutComments(text, f.src)
		}
		files = append(files, File{Path: f.dst, Mode: f.mode, Content: text})
	}
	return files, nil
}

// withoutComments returns a shell script with its comment lines left out but for the shebang and
// the header that says what the script does, and a line that says where the rest is: EC2 takes
// 16 KiB of user-data, and the scripts' comments are most of its size. None of the scripts has a
// here-document, whose lines this would change (TestScriptsHaveNoHereDocuments).
func withoutComments(script, src string) string {
	lines := strings.SplitAfter(script, "\n")
	out := make([]string, 0, len(lines))
	header := true
	for i, line := range lines {
		comment := strings.HasPrefix(strings.TrimLeft(line, " \t"), "#")
		switch {
		case i == 0 || header && comment:
			out = append(out, line)
		case header:
			header = false
			out = append(out, "# The other comments are in clawdeploy's cloudinit/"+src+".\n", line)
		case !comment:
			out = append(out, line)
		}
	}
	return strings.Join(out, "")
}

// staticFiles are the files of files/ and where they go; Files adds the rendered ones.
var staticFiles = []staticFile{
	{"files/lib.sh", LibexecDir + "/lib.sh", "0644", true},
	{"files/openclaw-volume.sh", LibexecDir + "/openclaw-volume.sh", "0755", false},
	{"files/openclaw-secrets.sh", LibexecDir + "/openclaw-secrets.sh", "0755", true},
	{"files/openclaw-restore.sh", LibexecDir + "/openclaw-restore.sh", "0755", false},
	{"files/openclaw-start.sh", LibexecDir + "/openclaw-start.sh", "0755", true},
	{"files/openclaw-backup.sh", LibexecDir + "/openclaw-backup.sh", "0755", false},
	{"files/openclaw-spot-watch.sh", LibexecDir + "/openclaw-spot-watch.sh", "0755", false},
	{"files/openclaw-install-compose.sh", LibexecDir + "/openclaw-install-compose.sh", "0755", true},
	{"files/auto-approve-devices.sh", LibexecDir + "/auto-approve-devices.sh", "0755", true},
	{"files/docker-compose.yaml", "/etc/openclaw/docker-compose.yaml", "0644", true},
	{"files/systemd/openclaw-volume.service", UnitDir + "/openclaw-volume.service", "0644", false},
	{"files/systemd/openclaw-restore.service", UnitDir + "/openclaw-restore.service", "0644", false},
	{"files/systemd/openclaw.service", UnitDir + "/openclaw.service", "0644", false},
	{"files/systemd/openclaw-backup.service", UnitDir + "/openclaw-backup.service", "0644", false},
	{"files/systemd/openclaw-backup.timer", UnitDir + "/openclaw-backup.timer", "0644", false},
	{"files/systemd/openclaw-spot-watch.service", UnitDir + "/openclaw-spot-watch.service", "0644", false},
	{"files/systemd/openclaw-cloudwatch.service", UnitDir + "/openclaw-cloudwatch.service", "0644", false},
}

// SetupScriptPath is where cloud-init writes the setup script; the launch copies it from there.
const SetupScriptPath = LibexecDir + "/openclaw-setup.sh"

// Files returns every file the user-data writes, rendered ones included, after validating a.
func Files(a Args) ([]File, error) {
	if err := a.Validate(); err != nil {
		return nil, err
	}
	env, err := execute("openclaw.env.tmpl", envData{Args: a, DataDir: DataDir, BackupObject: BackupObject, BackupRequestObject: BackupRequestObject, GatewayPort: GatewayPort})
	if err != nil {
		return nil, err
	}
	static, err := read(staticFiles)
	if err != nil {
		return nil, err
	}
	files := append([]File{{Path: EnvFile, Mode: "0644", Content: env}}, static...)
	files = append(files,
		File{Path: SetupScriptPath, Mode: "0700", Content: string(setup.Script)},
		File{
			Path: path.Join(UnitDir, "openclaw-backup.timer.d", "interval.conf"),
			Mode: "0644",
			Content: fmt.Sprintf("# backup_interval_minutes of stack %s\n[Timer]\nOnUnitActiveSec=%dmin\n",
				a.Stack, a.BackupIntervalMinutes),
		},
	)
	return files, nil
}

type envData struct {
	Args
	DataDir             string
	BackupObject        string
	BackupRequestObject string
	GatewayPort         int
}

// Render returns the user-data for a, a #cloud-config document. It is pure: the same Args give
// the same bytes.
func Render(a Args) ([]byte, error) {
	files, err := Files(a)
	if err != nil {
		return nil, err
	}
	launch := setup.Launch{SourcePath: SetupScriptPath, EnvFile: EnvFile}.Command()
	out, err := execute("user-data.yaml.tmpl", struct {
		Args
		Files  []File
		Launch string
	}{a, files, launch})
	if err != nil {
		return nil, err
	}
	return []byte(out), nil
}

func execute(name string, data any) (string, error) {
	var b bytes.Buffer
	if err := templates.ExecuteTemplate(&b, name, data); err != nil {
		return "", fmt.Errorf("cloudinit: rendering %s: %w", name, err)
	}
	return b.String(), nil
}

// indent prefixes every non-empty line of s with n spaces, for a YAML block scalar.
func indent(n int, s string) string {
	pad := strings.Repeat(" ", n)
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = pad + l
		}
	}
	return strings.Join(lines, "\n")
}
