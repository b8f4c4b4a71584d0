package automation

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/clawdeploy/clawdeploy/journal"
	"github.com/clawdeploy/clawdeploy/targets/ec2spot"
)

// lockedMessage is the diy backend's refusal, as the pinned CLI words it (pkg/backend/diy/lock.go).
const lockedMessage = "error: the stack is currently locked by 2 lock(s). Either wait for the other process(es) to end " +
	"or delete the lock file with `pulumi cancel`.\n" +
	"  file:///tmp/s/.pulumi/locks/organization/openclaw/dev/1b2c.json: created by root@box-1 (pid 4242) at 2026-11-22T10:00:00Z\n" +
	"  file:///tmp/s/.pulumi/locks/organization/openclaw/dev/9f8e.json: created by ci user@other.example (pid 17) at 2026-11-22T10:00:05Z\n"

func TestParseLocks(t *testing.T) {
	locks, locked := parseLocks(errors.New(lockedMessage))
	if !locked || len(locks) != 2 {
		t.Fatalf("parseLocks = %+v, %v", locks, locked)
	}
	want := Lock{URL: "file:///tmp/s/.pulumi/locks/organization/openclaw/dev/1b2c.json", User: "root", Host: "box-1", PID: 4242,
		At: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}
	if !locks[0].At.Equal(want.At) || locks[0].URL != want.URL || locks[0].Host != want.Host || locks[0].PID != want.PID {
		t.Errorf("first lock = %+v, want %+v", locks[0], want)
	}
	if locks[1].User != "ci user" || locks[1].Host != "other.example" || locks[1].PID != 17 {
		t.Errorf("second lock = %+v", locks[1])
	}
	for _, err := range []error{nil, errors.New("error: resource create failed"), errors.New("stack is locked")} {
		if _, locked := parseLocks(err); locked {
			t.Errorf("parseLocks(%v) says locked", err)
		}
	}
}

// deadOwner returns the owner string of a process of this host that has exited, and its pid.
func deadOwner(t *testing.T) (string, int) {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	return Owner{Host: host, PID: cmd.Process.Pid, Start: 1, Nonce: "dead"}.String(), cmd.Process.Pid
}

func TestOwnerDeadOn(t *testing.T) {
	me, err := NewOwner()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseOwner(me.String())
	if err != nil || back != me {
		t.Fatalf("ParseOwner(%q) = %+v, %v", me.String(), back, err)
	}
	reused := me
	reused.Start++ // the same pid, started at another time: another process
	for _, tc := range []struct {
		name  string
		owner Owner
		host  string
		dead  bool
	}{
		{"this process", me, me.Host, false},
		{"pid reused by another process", reused, me.Host, true},
		{"another host", me, "elsewhere", false},
	} {
		if got := tc.owner.DeadOn(tc.host); got != tc.dead {
			t.Errorf("%s: DeadOn = %v, want %v", tc.name, got, tc.dead)
		}
	}
	if dead, _ := deadOwner(t); !ownerDeadHere()(dead) {
		t.Error("an exited process is not dead")
	}
	for _, bad := range []string{"", "host/12", "host/x/1/n", "host/12/x/n"} {
		if _, err := ParseOwner(bad); err == nil {
			t.Errorf("ParseOwner(%q) accepted", bad)
		}
		if ownerDeadHere()(bad) {
			t.Errorf("an unreadable owner %q counts as dead", bad)
		}
	}
}

// startMarked starts a long sleep that works, by its environment, for owner.
func startMarked(t *testing.T, owner string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sleep", "60")
	cmd.Env = append(os.Environ(), EnvOwner+"="+owner)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-done })
	// Start returns once execve has begun, but the kernel publishes the new environment a moment
	// later: until then /proc/<pid>/environ reads empty, and the process is (rightly) not
	// provably anyone's. Wait for it, as a real orphan has long had it.
	deadline := time.Now().Add(5 * time.Second)
	for ProcessOwner(cmd.Process.Pid) != owner {
		if time.Now().After(deadline) {
			t.Fatalf("pid %d never showed its environment", cmd.Process.Pid)
		}
		time.Sleep(time.Millisecond)
	}
	return cmd
}

func testHold(t *testing.T, prevOwner string) *hold {
	t.Helper()
	me, err := NewOwner()
	if err != nil {
		t.Fatal(err)
	}
	d := &Driver{owner: me.String(), drain: 2 * time.Second, events: discard, now: time.Now}
	return &hold{d: d, stack: "dev", prev: journal.Record{LeaseOwner: prevOwner}}
}

func TestJudgeLocks(t *testing.T) {
	host, _ := os.Hostname()
	dead, deadPID := deadOwner(t)
	orphan := startMarked(t, dead)
	otherHostOwner := Owner{Host: "box-2", PID: 1, Start: 1, Nonce: "n"}.String()

	for _, tc := range []struct {
		name      string
		prevOwner string
		lock      Lock
		held      bool
	}{
		{"pid gone from this host", "", Lock{Host: host, PID: deadPID}, false},
		{"live process with no owner (an operator's pulumi)", "", Lock{Host: host, PID: os.Getpid()}, true},
		{"CLI orphaned by a dead driver", dead, Lock{Host: host, PID: orphan.Process.Pid}, false},
		{"another host whose driver's lease we took over", otherHostOwner, Lock{Host: "box-2", PID: 99}, false},
		{"another host we know nothing of", "", Lock{Host: "box-3", PID: 99}, true},
		{"another host while the previous owner was on a third", otherHostOwner, Lock{Host: "box-3", PID: 99}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := testHold(t, tc.prevOwner)
			err := h.d.judgeLocks(h, []Lock{tc.lock})
			var held *LockHeldError
			if errors.As(err, &held) != tc.held {
				t.Errorf("judgeLocks = %v, want held=%v", err, tc.held)
			}
		})
	}
	if processAlive(orphan.Process.Pid) {
		t.Error("the orphaned CLI of a dead driver is still running")
	}
}

func TestStopOrphansAndKillProcessesOf(t *testing.T) {
	dead, _ := deadOwner(t)
	a, b := startMarked(t, dead), startMarked(t, dead)
	bystander := startMarked(t, "someone/1/1/else")
	if n := stopOrphans(dead, time.Second); n != 2 {
		t.Errorf("stopOrphans found %d processes, want 2", n)
	}
	if processAlive(a.Process.Pid) || processAlive(b.Process.Pid) {
		t.Error("an orphan survived stopOrphans")
	}
	if !processAlive(bystander.Process.Pid) {
		t.Error("stopOrphans stopped a process of another owner")
	}
	if n := killProcessesOf("someone/1/1/else"); n != 1 {
		t.Errorf("killProcessesOf killed %d, want 1", n)
	}
	deadline := time.Now().Add(5 * time.Second)
	for processAlive(bystander.Process.Pid) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if processAlive(bystander.Process.Pid) {
		t.Error("killProcessesOf left its process running")
	}
}

func TestStageTracker(t *testing.T) {
	st := Stages{Order: []string{"a", "b", "c", "d"}}
	type step struct {
		stage    string
		news     bool
		recorded string
		moved    bool
	}
	for _, tc := range []struct {
		name    string
		current string
		steps   []step
	}{
		{"in order", "", []step{{"a", true, "a", true}, {"b", true, "b", true}, {"a", false, "", false}}},
		{"out of order: the stage waits for its predecessors", "", []step{
			{"c", true, "", false}, {"b", true, "", false}, {"a", true, "c", true}, {"d", true, "d", true}}},
		{"resumed at b", "b", []step{{"a", false, "", false}, {"d", true, "", false}, {"c", true, "d", true}}},
		{"unknown stage", "", []step{{"z", false, "", false}}},
	} {
		tr := newStageTracker(st, tc.current)
		for i, s := range tc.steps {
			news, recorded, moved := tr.complete(s.stage)
			if news != s.news || recorded != s.recorded || moved != s.moved {
				t.Errorf("%s, step %d (%s): complete = %v %q %v, want %v %q %v", tc.name, i, s.stage,
					news, recorded, moved, s.news, s.recorded, s.moved)
			}
		}
	}
	// An optional stage (b) that a deployment does not have is passed over once c is done; one
	// it has is news, and holds nothing back.
	opt := Stages{Order: []string{"a", "b", "c", "d"}, Optional: []string{"b"}}
	tr := newStageTracker(opt, "")
	for i, s := range []struct {
		stage, recorded string
	}{{"a", "a"}, {"c", "c"}, {"d", "d"}} {
		if _, recorded, _ := tr.complete(s.stage); recorded != s.recorded {
			t.Errorf("optional stage skipped, step %d: recorded %q, want %q", i, recorded, s.recorded)
		}
	}
	tr = newStageTracker(opt, "")
	for i, s := range []struct {
		stage, recorded string
	}{{"a", "a"}, {"b", "b"}, {"c", "c"}} {
		if _, recorded, _ := tr.complete(s.stage); recorded != s.recorded {
			t.Errorf("optional stage done, step %d: recorded %q, want %q", i, recorded, s.recorded)
		}
	}
	if news, _, _ := tr.complete("b"); news {
		t.Errorf("an optional stage done twice is news")
	}
	if !slices.Contains(ec2spot.Stages.Order, StageSetupComplete) || ec2spot.Stages.Order[len(ec2spot.Stages.Order)-1] != StageSetupComplete {
		t.Errorf("the ec2-spot stages do not end with %s: %v", StageSetupComplete, ec2spot.Stages.Order)
	}
	for typ, stage := range ec2spot.Stages.ByType {
		if !slices.Contains(ec2spot.Stages.Order, stage) {
			t.Errorf("%s marks %s, which is not a stage", typ, stage)
		}
	}
}

// TestPendingOnDisk: a file backend's checkpoint is read for pending operations without the
// CLI; what the driver cannot read for sure (a gzipped checkpoint, a torn one, another format,
// another backend) is left to the CLI's export.
func TestPendingOnDisk(t *testing.T) {
	dir := t.TempDir()
	d := &Driver{effectiveBackend: "file://" + dir, projectName: "openclaw"}
	stacks := filepath.Join(dir, ".pulumi", "stacks", "openclaw")
	if err := os.MkdirAll(stacks, 0o700); err != nil {
		t.Fatal(err)
	}
	write := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(stacks, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("pending.json", `{"version":3,"checkpoint":{"stack":"organization/openclaw/pending","latest":{"manifest":{},`+
		`"resources":[],"pending_operations":[{"resource":{"urn":"urn:pulumi:pending::openclaw::sim:index:Thing::a","custom":true,"type":"sim:index:Thing"},"type":"creating"}]}}}`)
	write("settled.json", `{"version":3,"checkpoint":{"stack":"organization/openclaw/settled","latest":{"manifest":{},"resources":[]}}}`)
	write("new.json", `{"version":3,"checkpoint":{"stack":"organization/openclaw/new"}}`)
	write("torn.json", `{"version":3,"checkpoint":{"stack":"organiz`)
	write("future.json", `{"version":4,"checkpoint":{}}`)
	write("zipped.json.gz", "\x1f\x8b")
	for _, c := range []struct {
		stack          string
		pending, known bool
	}{
		{"pending", true, true}, {"settled", false, true}, {"new", false, true}, {"absent", false, true},
		{"torn", false, false}, {"future", false, false}, {"zipped", false, false},
	} {
		if pending, known := d.pendingOnDisk(c.stack); pending != c.pending || known != c.known {
			t.Errorf("%s: pending %v known %v, want %v %v", c.stack, pending, known, c.pending, c.known)
		}
	}
	s3 := &Driver{effectiveBackend: "s3://bucket/prefix", projectName: "openclaw"}
	if _, known := s3.pendingOnDisk("pending"); known {
		t.Error("an s3 backend's checkpoint was read as known")
	}
}
