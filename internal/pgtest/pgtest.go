// Package pgtest runs a real PostgreSQL server (Debian's postgresql package) for tests: initdb in
// a temporary directory, the server on a free loopback port, one database per test. initdb
// refuses to run as root, so as root the server is made and run as the postgres user. A missing
// server fails: these tests are the proof that the shared journal works on PostgreSQL.
package pgtest

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql's "pgx"

	"github.com/clawdeploy/clawdeploy/internal/loopback"
)

// Server is a running PostgreSQL server.
type Server struct {
	Port int
	dir  string
	cmd  *exec.Cmd
	// exited is closed when cmd has exited.
	exited chan struct{}
	n      atomic.Int64
}

// Bin returns the directory of the newest installed PostgreSQL server's binaries.
func Bin() (string, error) {
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(found) == 0 {
		return "", fmt.Errorf("no PostgreSQL server is installed (apt-get install postgresql): no /usr/lib/postgresql/*/bin/initdb")
	}
	sort.Slice(found, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(found[i]))))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(found[j]))))
		return vi < vj
	})
	return filepath.Dir(found[len(found)-1]), nil
}

// Start makes a cluster in a temporary directory and runs its server on 127.0.0.1 until Stop.
func Start() (*Server, error) {
	bin, err := Bin()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		return nil, err
	}
	s := &Server{dir: dir}
	asPostgres := os.Geteuid() == 0
	if asPostgres {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running PostgreSQL as root needs the postgres user (the postgresql package makes it): %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, err
		}
	}
	command := func(name string, args ...string) *exec.Cmd {
		if asPostgres {
			return exec.Command("runuser", append([]string{"-u", "postgres", "--", filepath.Join(bin, name)}, args...)...)
		}
		return exec.Command(filepath.Join(bin, name), args...)
	}
	data := filepath.Join(dir, "data")
	if out, err := command("initdb", "-D", data, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8").CombinedOutput(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}
	if _, err := loopback.Serve(func(port int) ([]byte, error) { return s.run(command, data, port) }); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// run starts the server on port and waits until it accepts connections, or returns its log and
// why not.
func (s *Server) run(command func(name string, args ...string) *exec.Cmd, data string, port int) ([]byte, error) {
	logName := filepath.Join(s.dir, "server.log")
	log, err := os.Create(logName)
	if err != nil {
		return nil, err
	}
	defer func() { _ = log.Close() }()
	// fsync off: the tests prove the journal's statements, not the disk's durability.
	cmd := command("postgres", "-D", data, "-h", "127.0.0.1", "-p", strconv.Itoa(port), "-k", s.dir,
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "max_connections=300")
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s.exited = make(chan struct{})
	go func(exited chan struct{}) { _ = cmd.Wait(); close(exited) }(s.exited)
	s.cmd, s.Port = cmd, port
	// The server says it listens once it has bound the port: only then is what answers it.
	listening := []byte(fmt.Sprintf(`listening on IPv4 address "127.0.0.1", port %d`, port))
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-s.exited:
			out, _ := os.ReadFile(logName)
			return out, fmt.Errorf("PostgreSQL on port %d exited:\n%s", port, out)
		default:
		}
		out, _ := os.ReadFile(logName)
		db, err := sql.Open("pgx", s.DSN("postgres"))
		if err == nil {
			err = db.PingContext(context.Background())
			_ = db.Close()
		}
		if err == nil {
			if bytes.Contains(out, listening) {
				return nil, nil
			}
			err = fmt.Errorf("something answered before the server said it listened")
		}
		if time.Now().After(deadline) {
			return out, fmt.Errorf("PostgreSQL did not accept connections within 30s: %w\n%s", err, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// DSN is the URL of a database of the server.
func (s *Server) DSN(database string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.Port, database)
}

// NewDatabase makes an empty database and returns its URL.
func (s *Server) NewDatabase(prefix string) (string, error) {
	name := fmt.Sprintf("%s_%d", strings.ToLower(prefix), s.n.Add(1))
	db, err := sql.Open("pgx", s.DSN("postgres"))
	if err != nil {
		return "", err
	}
	defer func() { _ = db.Close() }()
	if _, err := db.Exec(`CREATE DATABASE ` + name); err != nil {
		return "", fmt.Errorf("creating database %s: %w", name, err)
	}
	return s.DSN(name), nil
}

// Stop ends the server and removes its cluster.
func (s *Server) Stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGQUIT)
		select {
		case <-s.exited:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
			<-s.exited
		}
	}
	_ = os.RemoveAll(s.dir)
}
