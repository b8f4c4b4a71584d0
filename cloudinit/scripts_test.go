package cloudinit

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/clawdeploy/clawdeploy/internal/moto"
)

// requireRoot fails a test that needs loop devices, which only real root may mount.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatalf("this test mounts filesystem images on loop devices and must run as root")
	}
}

// image makes a 64 MiB image file, blank or with an XFS filesystem holding a file named which.
func image(t *testing.T, dir, name, which string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, 300<<20); err != nil {
		t.Fatal(err)
	}
	if which == "" {
		return p
	}
	if out, err := exec.Command("mkfs.xfs", "-q", p).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.xfs (apt-get install xfsprogs): %v\n%s", err, out)
	}
	mnt := t.TempDir()
	script := `set -e; mount "$1" "$2"; echo "$3" > "$2/which"; umount "$2"`
	if out, err := exec.Command("unshare", "--mount", "sh", "-c", script, "sh", p, mnt, which).CombinedOutput(); err != nil {
		t.Fatalf("writing into %s: %v\n%s", name, err, out)
	}
	return p
}

func blkid(t *testing.T, p, tag string) string {
	t.Helper()
	out, _ := exec.Command("blkid", "-p", "-o", "value", "-s", tag, p).Output()
	return strings.TrimSpace(string(out))
}

// linkVolume makes the by-id link Nitro instances have for an EBS volume.
func linkVolume(t *testing.T, h *host, volume, target string) {
	t.Helper()
	link := filepath.Join(h.root, "dev/disk/by-id", "nvme-Amazon_Elastic_Block_Store_"+strings.ReplaceAll(volume, "-", ""))
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// afterMount prints what is mounted on the data folder: the device's file and the marker file.
const afterMount = `echo "mounted: $(cat "$OPENCLAW_TEST_DATA/which" 2>/dev/null || echo none)"`

func TestVolumeIsFoundByItsID(t *testing.T) {
	t.Parallel()
	requireRoot(t)
	h := newHost(t, testArgs("openclaw-dev-volume"), nil)
	dir := t.TempDir()
	linkVolume(t, h, "vol-0999999999abcdef0", image(t, dir, "decoy.img", "decoy"))
	// A partition link, named as udev names them, must not match either.
	part := filepath.Join(h.root, "dev/disk/by-id", "nvme-Amazon_Elastic_Block_Store_vol0123456789abcdef0-part1")
	if err := os.Symlink(image(t, dir, "part.img", "partition"), part); err != nil {
		t.Fatal(err)
	}
	right := image(t, dir, "data.img", "right")
	uuid := blkid(t, right, "UUID")
	linkVolume(t, h, "vol-0123456789abcdef0", right)

	r := h.mustRun(mounts{after: afterMount}, "openclaw-volume.sh")
	if !strings.Contains(r.stdout, "mounted: right") {
		t.Errorf("mounted the wrong device:\n%s\n%s", r.stdout, r.stderr)
	}
	if got := blkid(t, right, "UUID"); got != uuid {
		t.Errorf("the formatted volume was reformatted: UUID %s, was %s", got, uuid)
	}
	if !strings.Contains(r.stderr, "holds data: mounting it as it is") {
		t.Errorf("log: %s", r.stderr)
	}
}

func TestBlankVolumeIsFormattedOnce(t *testing.T) {
	t.Parallel()
	requireRoot(t)
	h := newHost(t, testArgs("openclaw-dev-volume"), nil)
	blank := image(t, t.TempDir(), "blank.img", "")
	linkVolume(t, h, "vol-0123456789abcdef0", blank)

	r := h.mustRun(mounts{after: `touch "$OPENCLAW_TEST_DATA/kept" && echo wrote`}, "openclaw-volume.sh")
	if !strings.Contains(r.stderr, "is blank: creating an xfs filesystem") || blkid(t, blank, "TYPE") != "xfs" {
		t.Fatalf("blank volume not formatted: %s", r.stderr)
	}
	if label := blkid(t, blank, "LABEL"); label != "openclaw" {
		t.Errorf("label = %q", label)
	}
	uuid := blkid(t, blank, "UUID")

	// Next boot: the same volume is mounted, not formatted again, and keeps its file.
	r = h.mustRun(mounts{after: `ls "$OPENCLAW_TEST_DATA"`}, "openclaw-volume.sh")
	if blkid(t, blank, "UUID") != uuid || !strings.Contains(r.stdout, "kept") {
		t.Errorf("second boot reformatted or lost the data: %s\n%s", r.stdout, r.stderr)
	}
}

func TestVolumeThatArrivesLateIsWaitedFor(t *testing.T) {
	t.Parallel()
	requireRoot(t)
	h := newHost(t, testArgs("openclaw-dev-volume"), nil)
	img := image(t, t.TempDir(), "late.img", "late")
	// The attachment is created after the instance boots: the device shows up later.
	go func() {
		time.Sleep(3 * time.Second)
		linkVolume(t, h, "vol-0123456789abcdef0", img)
	}()
	h.appendSettings(map[string]string{"OPENCLAW_DEVICE_POLL_SECONDS": "0.5"})
	r := h.mustRun(mounts{after: afterMount}, "openclaw-volume.sh")
	if !strings.Contains(r.stdout, "mounted: late") || r.duration < 3*time.Second {
		t.Errorf("late volume: %s %s after %s", r.stdout, r.stderr, r.duration)
	}
}

func TestMissingVolumeFailsWithinTheBound(t *testing.T) {
	t.Parallel()
	h := newHost(t, testArgs("openclaw-dev-volume"), nil)
	h.appendSettings(map[string]string{"OPENCLAW_DEVICE_WAIT_SECONDS": "3", "OPENCLAW_DEVICE_POLL_SECONDS": "0.5"})
	r := h.runScript(mounts{}, "openclaw-volume.sh")
	if r.code == 0 || !strings.Contains(r.stderr, "did not appear") {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	// bash counts SECONDS in whole seconds from its start, so a 3 s bound ends between 2 and 3 s;
	// a loaded machine may add seconds to the script's start, but never the 300 s default bound.
	if r.duration < 2*time.Second || r.duration > 60*time.Second {
		t.Errorf("gave up after %s, want about 3s", r.duration)
	}
	t.Logf("missing volume: failed after %.1fs with a 3s bound", r.duration.Seconds())
}

// putSecret stores a secret as the Secrets component does.
func putSecret(t *testing.T, m *moto.Server, name, value string) {
	t.Helper()
	m.PutSecureString(t, name, value)
}

func TestSecretsGoToTmpfsOnly(t *testing.T) {
	t.Parallel()
	m := moto.Start(t)
	secrets := map[string]string{
		"OPENCLAW_GATEWAY_TOKEN": "gw-7f3c9a1e5b",
		"ANTHROPIC_API_KEY":      "sk-ant-test-5e2d",
	}
	for k, v := range secrets {
		putSecret(t, m, "/openclaw/dev/env/"+k, v)
	}
	putSecret(t, m, "/openclaw/other/env/OPENAI_API_KEY", "another-stacks-secret")
	h := newHost(t, testArgs("openclaw-dev-secrets"), m.Env())

	observed := filepath.Join(t.TempDir(), "observed")
	r := h.mustRun(mounts{run: true, after: `stat -c %a "$OPENCLAW_TEST_RUN/.env" > "` + observed + `.mode"; cp "$OPENCLAW_TEST_RUN/.env" "` + observed + `"`},
		"openclaw-secrets.sh")
	env, err := os.ReadFile(observed)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(env)), "\n")
	slices.Sort(lines)
	want := []string{"ANTHROPIC_API_KEY=sk-ant-test-5e2d", "OPENCLAW_GATEWAY_TOKEN=gw-7f3c9a1e5b"}
	if !slices.Equal(lines, want) {
		t.Errorf(".env = %q, want %q", lines, want)
	}
	if mode, _ := os.ReadFile(observed + ".mode"); strings.TrimSpace(string(mode)) != "600" {
		t.Errorf(".env mode = %s, want 600", mode)
	}
	for _, v := range secrets {
		if strings.Contains(r.stdout+r.stderr, v) {
			t.Errorf("the script printed a secret value")
		}
	}
	// Nothing is left on the real disk under the run folder.
	if entries, _ := os.ReadDir(h.run); len(entries) != 0 {
		t.Errorf("files left on disk: %v", entries)
	}

	// Without tmpfs it refuses.
	r = h.runScript(mounts{}, "openclaw-secrets.sh")
	if r.code == 0 || !strings.Contains(r.stderr, "not tmpfs") {
		t.Errorf("secrets written to disk: exit %d %s", r.code, r.stderr)
	}
	if entries, _ := os.ReadDir(h.run); len(entries) != 0 {
		t.Errorf("files left on disk after refusing: %v", entries)
	}
}

func TestGatewayStartRequiresMountAndRestore(t *testing.T) {
	t.Parallel()
	m := moto.Start(t)
	putSecret(t, m, "/openclaw/dev/env/OPENCLAW_GATEWAY_TOKEN", "gw-token")
	h := newHost(t, testArgs("openclaw-dev-start"), m.Env())

	if r := h.runScript(mounts{run: true}, "openclaw-start.sh"); r.code == 0 || !strings.Contains(r.stderr, "is not a mountpoint") {
		t.Errorf("started without the volume: exit %d %s", r.code, r.stderr)
	}
	if r := h.runScript(mounts{data: true, run: true}, "openclaw-start.sh"); r.code == 0 || !strings.Contains(r.stderr, "has not completed") {
		t.Errorf("started before the restore: exit %d %s", r.code, r.stderr)
	}
	if calls := h.stubCalls(); len(calls) != 0 {
		t.Errorf("refused starts still ran %v", calls)
	}
	markRestored(t, h)
	// A data folder from before the auth-profile key had its directory: the start makes it.
	if err := os.MkdirAll(filepath.Join(h.data, ".openclaw"), 0o700); err != nil {
		t.Fatal(err)
	}
	h.appendSettings(map[string]string{"OPENCLAW_UID": fmt.Sprint(os.Getuid()), "OPENCLAW_GID": fmt.Sprint(os.Getgid())})
	h.mustRun(mounts{data: true, run: true}, "openclaw-start.sh")
	info, err := os.Stat(filepath.Join(h.data, "docker-compose.yaml"))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("compose file on the data volume: %v %v", info, err)
	}
	for _, dir := range stateDirs {
		if info, err := os.Stat(filepath.Join(h.data, dir)); err != nil || !info.IsDir() || info.Mode().Perm() != 0o700 {
			t.Errorf("state directory %s before the start: %v %v", dir, info, err)
		}
	}
	calls := h.stubCalls()
	if len(calls) != 2 || !strings.HasPrefix(calls[0], "docker image inspect ") ||
		!strings.HasPrefix(calls[1], "docker compose --project-name openclaw") || !strings.HasSuffix(calls[1], "pull --quiet") {
		t.Errorf("calls = %q, want the image looked for, then pulled", calls)
	}
	// The next start (a restart, a reboot) finds the image here: no pull, so a tag that moved
	// since is not followed.
	r := h.mustRun(mounts{data: true, run: true}, "openclaw-start.sh")
	if calls := h.stubCalls()[len(calls):]; len(calls) != 1 || !strings.HasPrefix(calls[0], "docker image inspect ") {
		t.Errorf("the second start called %q, want the image looked for and nothing pulled", calls)
	}
	if !strings.Contains(r.stderr, "is here: not pulling") {
		t.Errorf("the second start does not say why it did not pull: %s", r.stderr)
	}
}
