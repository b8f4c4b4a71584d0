// Package sshd starts a real OpenSSH server (Debian's openssh-server) on a loopback port for one
// test, with its own host key and one authorized client key, and counts the connections and exec
// sessions it serves from its log, so tests can assert round trips.
package sshd

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/clawdeploy/clawdeploy/internal/loopback"
	"github.com/clawdeploy/clawdeploy/sshexec"
)

// Binary is where Debian's openssh-server installs the daemon.
const Binary = "/usr/sbin/sshd"

// Server is a running sshd.
type Server struct {
	Port int
	User string
	// Home is the user's home directory as sessions see it ($HOME), a directory of the test's.
	Home string
	// HostKey is the server's public host key, in authorized_keys form.
	HostKey string
	// ClientKey is the private key (OpenSSH form) of the one authorized client key.
	ClientKey []byte
	log       string
	cmd       *exec.Cmd
}

// NewKey returns a fresh ed25519 key: its private half in OpenSSH PEM form and its public half
// in authorized_keys form.
func NewKey(t testing.TB) (private []byte, public string) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(block), strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub)))
}

// Start runs sshd for the test on 127.0.0.1, logging in the current user with ClientKey. A
// missing sshd fails the test: these tests are the proof that the SSH path works.
func Start(t testing.TB) *Server {
	t.Helper()
	return start(t, "")
}

// StartFor is Start logging in name instead, a user other than root the test has made
// (AddUser), with a home of its own that it owns, as on a VPS image that logs in as debian or
// ubuntu. Only root can serve another user.
func StartFor(t testing.TB, name string) *Server {
	t.Helper()
	return start(t, name)
}

// AddUser makes a local user for a test, unless it exists, with a home of its own and no
// password (it logs in with keys only); with sudo, it may run any command as root through
// passwordless sudo. The user and its sudo rule stay for later tests: they are the same each
// time.
func AddUser(t testing.TB, name string, sudo bool) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatalf("making the test user %s needs root (CI runs as root)", name)
	}
	if _, err := user.Lookup(name); err != nil {
		// '*' is no password, not a locked account: sshd without PAM refuses a locked one.
		if out, err := exec.Command("useradd", "--no-create-home", "--shell", "/bin/bash", "--password", "*", name).CombinedOutput(); err != nil {
			if _, again := user.Lookup(name); again != nil { // another test may have made it meanwhile
				t.Fatalf("useradd %s: %v\n%s", name, err, out)
			}
		}
	}
	rule := filepath.Join("/etc/sudoers.d", "clawdeploy-test-"+name)
	if !sudo {
		_ = os.Remove(rule)
		return
	}
	if _, err := exec.LookPath("sudo"); err != nil {
		t.Fatalf("sudo is not installed (apt-get install sudo): %v", err)
	}
	if err := os.WriteFile(rule, []byte(name+" ALL=(ALL) NOPASSWD:ALL\n"), 0o440); err != nil {
		t.Fatal(err)
	}
}

func start(t testing.TB, name string) *Server {
	t.Helper()
	if _, err := os.Stat(Binary); err != nil {
		t.Fatalf("sshd is not installed (apt-get install openssh-server): %v", err)
	}
	// sshd refuses to start without its privilege separation directory; the package creates it
	// only when its service starts, which it does not in a container.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatalf("sshd needs /run/sshd: %v", err)
	}
	u, err := user.Current()
	if name != "" {
		u, err = user.Lookup(name)
	}
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	hostPriv, hostPub := NewKey(t)
	clientPriv, clientPub := NewKey(t)
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	hostKeyFile := write("host_ed25519", hostPriv)
	authorized := write("authorized_keys", []byte(clientPub+"\n"))
	// The user's home on this host is a directory of the test's: what a session writes under
	// $HOME (an authorized key, say) stays there, and sshd reads keys from it too.
	home := filepath.Join(dir, "home")
	if name != "" {
		// Another user reads its keys and writes its home as itself: a home of its own, outside
		// the test's directory (which only root may enter), holding the client key.
		//nolint:usetesting // t.TempDir's parent is root's alone (0700): the user could not enter it
		if home, err = os.MkdirTemp("", "sshd-home-"+name+"-"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.RemoveAll(home) })
		authorized = filepath.Join(home, ".ssh", "authorized_keys")
	}
	if err := os.MkdirAll(filepath.Join(home, ".ssh"), 0o700); err != nil {
		t.Fatal(err)
	}
	if name != "" {
		if err := os.WriteFile(authorized, []byte(clientPub+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		for _, p := range []string{home, filepath.Join(home, ".ssh"), authorized} {
			if err := os.Chown(p, uid, gid); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chmod(home, 0o755); err != nil {
			t.Fatal(err)
		}
	}

	s := &Server{User: u.Username, Home: home, HostKey: hostPub, ClientKey: clientPriv, log: filepath.Join(dir, "sshd.log")}
	config := func(port int) string {
		return write("sshd_config", []byte(strings.Join([]string{
			fmt.Sprintf("ListenAddress 127.0.0.1:%d", port),
			"HostKey " + hostKeyFile,
			"AuthorizedKeysFile " + strings.Join(slices.Compact([]string{authorized, filepath.Join(home, ".ssh", "authorized_keys")}), " "),
			"PidFile " + filepath.Join(dir, "sshd.pid"),
			"PasswordAuthentication no",
			"KbdInteractiveAuthentication no",
			"UsePAM no",
			"StrictModes no",
			"UseDNS no",
			"PermitRootLogin prohibit-password",
			"LogLevel VERBOSE",
			// Debian's bash sources ~/.bashrc for commands run by sshd unless SHLVL says it is a
			// nested shell. The test machine's dotfiles (here, a pyenv init costing ~2 s per session)
			// are not part of the host under test: a fresh VPS's are not run, as they cost nothing.
			"SetEnv SHLVL=1 HOME=" + home,
			"",
		}, "\n")))
	}
	if _, err := loopback.Serve(func(port int) ([]byte, error) { return s.run(t, config(port), port) }); err != nil {
		t.Fatal(err)
	}
	return s
}

// run starts sshd with config, listening on port, and waits until it accepts connections, or
// returns its log and why not.
func (s *Server) run(t testing.TB, config string, port int) ([]byte, error) {
	logFile, err := os.Create(s.log)
	if err != nil {
		return nil, err
	}
	defer func() { _ = logFile.Close() }()
	// -D: stay in the foreground; -e: log to stderr, which is the log file the counts come from.
	cmd := exec.Command(Binary, "-D", "-e", "-f", config)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting sshd: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	s.cmd, s.Port = cmd, port
	t.Cleanup(func() {
		if s.cmd == cmd {
			s.Close()
		}
		<-exited
	})
	// sshd says it listens once it has bound the port: only then is what answers it.
	listening := []byte(fmt.Sprintf("Server listening on 127.0.0.1 port %d.", port))
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-exited:
			out, _ := os.ReadFile(s.log)
			return out, fmt.Errorf("sshd on port %d exited:\n%s", port, out)
		default:
		}
		out, _ := os.ReadFile(s.log)
		c, err := net.DialTimeout("tcp", s.Address(), time.Second)
		if err == nil {
			_ = c.Close()
			if bytes.Contains(out, listening) {
				return nil, nil
			}
			err = fmt.Errorf("something answered before sshd said it listened")
		}
		if time.Now().After(deadline) {
			return out, fmt.Errorf("sshd did not listen on %s within 10s: %w\n%s", s.Address(), err, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Close stops the server and its sessions: the port is closed from then on.
func (s *Server) Close() {
	// Sessions first: each runs in a session of its own (sshd calls setsid), so they are found
	// as the listener's children, which they stop being once it is gone.
	s.KillSessions()
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
}

// Address returns 127.0.0.1:port.
func (s *Server) Address() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)) }

// Target returns the sshexec target that reaches the server as the authorized client, with its
// host key pinned.
func (s *Server) Target() sshexec.Target {
	return sshexec.Target{Host: "127.0.0.1", Port: s.Port, User: s.User, PrivateKey: s.ClientKey, HostKey: s.HostKey}
}

// Stats are what the server served so far.
type Stats struct {
	// Connections is the number of authenticated connections.
	Connections int
	// Execs is the number of exec sessions (one command each).
	Execs int
}

// Stats counts from the server's log.
func (s *Server) Stats() Stats {
	out, _ := os.ReadFile(s.log)
	return Stats{
		Connections: strings.Count(string(out), "Accepted publickey for "),
		Execs:       strings.Count(string(out), "Starting session: command for "),
	}
}

// PID is the listening daemon's process: every session's processes descend from it.
func (s *Server) PID() int { return s.cmd.Process.Pid }

// Log returns the server's log, for failure messages.
func (s *Server) Log() string {
	out, _ := os.ReadFile(s.log)
	return string(out)
}

// KillSessions kills, with SIGKILL, the server side of every open connection (the listener's
// children), as a server that drops its sessions would. It returns how many it killed.
func (s *Server) KillSessions() int {
	out, err := exec.Command("pgrep", "-P", strconv.Itoa(s.cmd.Process.Pid)).Output()
	if err != nil {
		return 0
	}
	n := 0
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil && syscall.Kill(pid, syscall.SIGKILL) == nil {
			n++
		}
	}
	return n
}
