package automation_test

import (
	"encoding/json"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	. "github.com/clawdeploy/clawdeploy/automation"
	"github.com/clawdeploy/clawdeploy/backup"
	"github.com/clawdeploy/clawdeploy/cloudinit"
	"github.com/clawdeploy/clawdeploy/internal/backuptest"
	"github.com/clawdeploy/clawdeploy/internal/enginetest"
	"github.com/clawdeploy/clawdeploy/internal/moto"
	"github.com/clawdeploy/clawdeploy/internal/spotpricefake"
)

// backupReport is the report a `backup verify --json` printed.
func (p *proc) backupReport() (*backup.Report, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, line := range p.lines {
		var e struct {
			Type string `json:"type"`
			backup.Report
		}
		if json.Unmarshal([]byte(line), &e) == nil && e.Type == "backup" {
			return &e.Report, true
		}
	}
	return nil, false
}

// TestBackupVerifyCommand runs `clawdeploy backup verify` on a deployment of the real program
// whose bucket is in moto: no backup yet, a good one, a broken newest one and the good version
// before it, and the usage errors; and, on the same deployment, `spot-prices --stack`.
func TestBackupVerifyCommand(t *testing.T) {
	t.Parallel()
	sim := enginetest.NewSim(t, bins)
	d, _, progress := newSimDriver(t, sim, nil, nil)
	res, err := d.Up(t.Context(), "dev", &UpOptions{Config: exampleConfig()})
	if err != nil {
		t.Fatalf("up: %v\n%s", err, progress)
	}
	bucket, _ := res.Outputs["backupBucket"].Value.(string)
	m := moto.Start(t)
	m.CreateBucket(t, bucket)
	var awsEnv []string
	for _, kv := range m.Env() {
		if strings.HasPrefix(kv, "AWS_") {
			awsEnv = append(awsEnv, kv)
		}
	}
	verify := func(args ...string) (*proc, int) {
		t.Helper()
		p := startSimWith(t, sim, "real", nil, awsEnv, append([]string{"backup", "verify", "--stack", "dev"}, args...)...)
		return p, p.wait(2 * time.Minute)
	}

	if p, code := verify(); code != ExitFailed || !strings.Contains(p.stderr.String(), "has no backup yet") {
		t.Errorf("no backup yet: exit %d\n%s", code, p.stderr.String())
	}

	client := s3.NewFromConfig(m.Config(), func(o *s3.Options) { o.UsePathStyle = true })
	files := backuptest.Files{".openclaw/openclaw.json": []byte(`{}`), "workspace/notes.md": []byte("# notes\n")}
	good := backuptest.Upload(t, client, bucket, cloudinit.BackupObject, backuptest.Archive(t, files, backuptest.Manifest(files)), "")
	p, code := verify()
	if r, ok := p.backupReport(); code != 0 || !ok || !r.Restorable || r.Files != 2 || r.VersionID != good {
		t.Errorf("a good backup: exit %d, report %+v\n%s", code, r, p.stderr.String())
	}
	if res, ok := p.result(); !ok || res.OK == nil || !*res.OK {
		t.Errorf("result event %+v", res)
	}

	lying := backuptest.Files{".openclaw/openclaw.json": []byte(`{"changed":true}`), "workspace/notes.md": []byte("# notes\n")}
	backuptest.Upload(t, client, bucket, cloudinit.BackupObject, backuptest.Archive(t, lying, backuptest.Manifest(files)), "")
	p, code = verify()
	r, ok := p.backupReport()
	if code != ExitFailed || !ok || r.Restorable || len(r.Problems) != 1 || r.Problems[0].File != ".openclaw/openclaw.json" {
		t.Errorf("a broken backup: exit %d, report %+v", code, r)
	}
	if !strings.Contains(p.stderr.String(), "is not restorable: .openclaw/openclaw.json: sha256 ") {
		t.Errorf("the failure does not name the file:\n%s", p.stderr.String())
	}
	if p, code := verify("--version", good); code != 0 {
		t.Errorf("--version %s: exit %d\n%s", good, code, p.stderr.String())
	}

	// spot-prices --stack on the same deployment: its data volume pins me-central-1a, so the best
	// row is chosen there although 1b is cheaper (the Spot price history is a fake's: moto's is
	// one price of 2006).
	spot := spotpricefake.Start(t,
		spotpricefake.Price{InstanceType: "t4g.small", Zone: "me-central-1a", Price: 0.0061, At: time.Now().Add(-time.Hour)},
		spotpricefake.Price{InstanceType: "t4g.small", Zone: "me-central-1b", Price: 0.0049, At: time.Now().Add(-time.Hour)})
	p = startSimWith(t, sim, "real", nil, append(awsEnv, "AWS_ENDPOINT_URL_EC2="+spot.URL), "spot-prices", "--stack", "dev", "--instance-types", "t4g.small")
	if code := p.wait(time.Minute); code != 0 {
		t.Fatalf("spot-prices --stack dev: exit %d\n%s", code, p.stderr.String())
	}
	var report SpotPriceReport
	for _, line := range p.lines {
		if strings.Contains(line, `"type":"spotPrices"`) {
			_ = json.Unmarshal([]byte(line), &report)
		}
	}
	if report.PinnedZone != "me-central-1a" || report.Best == nil || report.Best.Zone != "me-central-1a" || len(report.Rows) != 2 || report.Rows[0].Zone != "me-central-1b" {
		t.Errorf("spot-prices --stack dev: %+v", report)
	}
	if lines := report.ConfigLines(); len(lines) != 2 || lines[1] != "pulumi config set availability_zone me-central-1a" {
		t.Errorf("config lines %q", lines)
	}

	for _, args := range [][]string{{"backup", "verify"}, {"backup", "verify", "--stack", "../x"}} {
		cmd := exec.Command(sim.Bins.Dir+"/clawdeploy-sim", args...)
		cmd.Env = sim.Environ("SIMDRIVER_PROGRAM=real")
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != ExitUsage {
			t.Errorf("%v: %v, want exit %d\n%s", args, err, ExitUsage, out)
		}
	}
}
