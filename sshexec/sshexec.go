// Package sshexec runs one command on a host over SSH: one connection, one exec session, the host
// key checked against a pinned key, and dials retried with backoff inside the caller's deadline.
//
// It is what the driver polls a VPS with, and what the tests run the setup protocol's launch and
// poll commands with, so the strings under test are the strings that run.
package sshexec

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// Target is a host and the credentials to reach it.
type Target struct {
	Host string
	// Port defaults to 22.
	Port int
	// User defaults to root.
	User string
	// PrivateKey is a private key in OpenSSH or PEM form. It takes precedence over Password.
	PrivateKey []byte
	Password   string
	// HostKey is the host's public key in authorized_keys form ("ssh-ed25519 AAAA…"). A host
	// presenting another key is refused. Empty is refused too, unless AllowUnknownHostKey is set.
	HostKey             string
	AllowUnknownHostKey bool
}

// Address returns host:port.
func (t Target) Address() string {
	port := t.Port
	if port == 0 {
		port = 22
	}
	return net.JoinHostPort(t.Host, strconv.Itoa(port))
}

// Dialer says how hard to try to connect.
type Dialer struct {
	// Timeout bounds each dial, handshake included; 0 means 10 s.
	Timeout time.Duration
	// Attempts is how many dials to make before giving up; 0 means 5. The caller's context
	// deadline bounds them all in any case.
	Attempts int
	// Backoff is the wait after the first failed dial, doubled after each; 0 means 1 s.
	Backoff time.Duration
	// MaxOutput bounds what a command may print, stdout and stderr together; 0 means
	// DefaultMaxOutput. A command that prints more is cut off: an *OutputLimitError.
	MaxOutput int
}

// DefaultMaxOutput is what a command may print unless the Dialer says otherwise: far more than
// any command of the protocol prints, far less than would hurt the driver.
const DefaultMaxOutput = 1 << 20

// OutputLimitError is a command that printed more than the Dialer allows: the connection was
// closed there, and the command's result is unknown.
type OutputLimitError struct {
	Address string
	Limit   int
}

func (e *OutputLimitError) Error() string {
	return fmt.Sprintf("the command on %s printed more than %d bytes: cut off", e.Address, e.Limit)
}

// HostKeyError is a host that presented a key other than the pinned one. It is never retried.
type HostKeyError struct {
	Address string
	Want    string // fingerprint of the pinned key, or "" when none is pinned
	Got     string // fingerprint of the key presented
}

func (e *HostKeyError) Error() string {
	if e.Want == "" {
		return fmt.Sprintf("refusing %s: its host key %s is not pinned (set vps_host_key, or allow unknown host keys explicitly)", e.Address, e.Got)
	}
	return fmt.Sprintf("refusing %s: it presented host key %s, but %s is pinned", e.Address, e.Got, e.Want)
}

// ExitError is a command that ran and exited non-zero.
type ExitError struct {
	Status int
	Stdout string
	Stderr string
}

func (e *ExitError) Error() string {
	msg := strings.TrimSpace(e.Stderr)
	if msg == "" {
		msg = strings.TrimSpace(e.Stdout)
	}
	return fmt.Sprintf("remote command exited with status %d: %s", e.Status, msg)
}

// ParseHostKey parses a public key in authorized_keys form.
func ParseHostKey(s string) (ssh.PublicKey, error) {
	key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(strings.TrimSpace(s)))
	return key, err
}

// Signer parses the target's private key.
func (t Target) Signer() (ssh.Signer, error) {
	signer, err := ssh.ParsePrivateKey(t.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("the SSH private key for %s: %w", t.Address(), err)
	}
	return signer, nil
}

func (t Target) config(timeout time.Duration) (*ssh.ClientConfig, error) {
	var auth []ssh.AuthMethod
	switch {
	case len(t.PrivateKey) > 0:
		signer, err := t.Signer()
		if err != nil {
			return nil, err
		}
		auth = append(auth, ssh.PublicKeys(signer))
	case t.Password != "":
		auth = append(auth, ssh.Password(t.Password))
	default:
		return nil, fmt.Errorf("no SSH private key or password for %s", t.Address())
	}
	var pinned ssh.PublicKey
	if t.HostKey != "" {
		var err error
		if pinned, err = ParseHostKey(t.HostKey); err != nil {
			return nil, fmt.Errorf("the pinned host key of %s: %w", t.Address(), err)
		}
	}
	user := t.User
	if user == "" {
		user = "root"
	}
	return &ssh.ClientConfig{
		User:    user,
		Auth:    auth,
		Timeout: timeout,
		HostKeyCallback: func(_ string, _ net.Addr, key ssh.PublicKey) error {
			if pinned == nil {
				if t.AllowUnknownHostKey {
					return nil
				}
				return &HostKeyError{Address: t.Address(), Got: ssh.FingerprintSHA256(key)}
			}
			if !bytes.Equal(key.Marshal(), pinned.Marshal()) {
				return &HostKeyError{Address: t.Address(), Want: ssh.FingerprintSHA256(pinned), Got: ssh.FingerprintSHA256(key)}
			}
			return nil
		},
		// Only the pinned key's algorithm, so the host cannot offer another key of its own.
		HostKeyAlgorithms: hostKeyAlgorithms(pinned),
	}, nil
}

func hostKeyAlgorithms(pinned ssh.PublicKey) []string {
	if pinned == nil {
		return nil
	}
	if pinned.Type() == ssh.KeyAlgoRSA {
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	}
	return []string{pinned.Type()}
}

// permanent reports errors that another dial cannot fix.
func permanent(err error) bool {
	var hk *HostKeyError
	return errors.As(err, &hk) || strings.Contains(err.Error(), "unable to authenticate")
}

// Dial connects to the target, retrying failed dials with backoff until Attempts or ctx ends.
func (d Dialer) Dial(ctx context.Context, t Target) (*ssh.Client, error) {
	timeout, attempts, backoff := d.Timeout, d.Attempts, d.Backoff
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	if attempts == 0 {
		attempts = 5
	}
	if backoff == 0 {
		backoff = time.Second
	}
	cfg, err := t.config(timeout)
	if err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		client, err := dialOnce(ctx, t.Address(), cfg, timeout)
		if err == nil {
			return client, nil
		}
		if permanent(err) || attempt >= attempts {
			return nil, fmt.Errorf("ssh %s (attempt %d of %d): %w", t.Address(), attempt, attempts, err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("ssh %s (attempt %d of %d): %w; then %w", t.Address(), attempt, attempts, err, ctx.Err())
		case <-time.After(backoff):
		}
		backoff *= 2
	}
}

func dialOnce(ctx context.Context, addr string, cfg *ssh.ClientConfig, timeout time.Duration) (*ssh.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	// The handshake is bounded too: a host that accepts and then says nothing must not hang us.
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	c, chans, reqs, err := ssh.NewClientConn(conn, addr, cfg)
	if !stop() {
		if err == nil {
			_ = c.Close()
		}
		return nil, fmt.Errorf("handshake: %w", ctx.Err())
	}
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	return ssh.NewClient(c, chans, reqs), nil
}

// Run dials the target and runs command in one exec session, returning its standard output. A
// non-zero exit is an *ExitError carrying both outputs. Cancelling ctx closes the connection.
func (d Dialer) Run(ctx context.Context, t Target, command string) (string, error) {
	return d.RunWithInput(ctx, t, command, "")
}

// RunWithInput is Run with stdin given to the command on its standard input: the way to send
// the command what must not be in its arguments.
func (d Dialer) RunWithInput(ctx context.Context, t Target, command, stdin string) (string, error) {
	client, err := d.Dial(ctx, t)
	if err != nil {
		return "", err
	}
	defer func() { _ = client.Close() }()
	stop := context.AfterFunc(ctx, func() { _ = client.Close() })
	defer stop()
	limit := d.MaxOutput
	if limit == 0 {
		limit = DefaultMaxOutput
	}
	b := &budget{limit: limit, exceeded: func() { _ = client.Close() }}
	out, err := run(client, command, stdin, b)
	if b.wasExceeded() {
		return "", &OutputLimitError{Address: t.Address(), Limit: limit}
	}
	return out, err
}

// budget is what a command may print, shared by its two outputs; exceeded runs once, when it
// prints more (it closes the connection, so the command cannot block on a full channel).
type budget struct {
	mu          sync.Mutex
	limit, used int
	over        bool
	exceeded    func()
}

func (b *budget) wasExceeded() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.over
}

// limited is an output written into buf within b.
type limited struct {
	buf *bytes.Buffer
	b   *budget
}

func (w limited) Write(p []byte) (int, error) {
	w.b.mu.Lock()
	defer w.b.mu.Unlock()
	if w.b.used+len(p) > w.b.limit {
		if !w.b.over {
			w.b.over = true
			w.b.exceeded()
		}
		return 0, errors.New("output limit")
	}
	w.b.used += len(p)
	return w.buf.Write(p)
}

func run(client *ssh.Client, command, stdin string, b *budget) (string, error) {
	session, err := client.NewSession()
	if err != nil {
		return "", fmt.Errorf("ssh session: %w", err)
	}
	defer func() { _ = session.Close() }()
	var stdout, stderr bytes.Buffer
	session.Stdout, session.Stderr = limited{&stdout, b}, limited{&stderr, b}
	if stdin != "" {
		session.Stdin = strings.NewReader(stdin)
	}
	err = session.Run(command)
	var exit *ssh.ExitError
	if errors.As(err, &exit) {
		return stdout.String(), &ExitError{Status: exit.ExitStatus(), Stdout: stdout.String(), Stderr: stderr.String()}
	}
	if err != nil {
		return stdout.String(), fmt.Errorf("ssh exec: %w", err)
	}
	return stdout.String(), nil
}

// errScanned stops a handshake once the host key is read.
var errScanned = errors.New("host key read")

// ScanHostKey reads the key a host presents, in authorized_keys form, without logging in: the
// trust-on-first-contact read of a host whose key nobody pinned. It is bounded by timeout.
func ScanHostKey(ctx context.Context, address string, timeout time.Duration) (string, error) {
	var key ssh.PublicKey
	cfg := &ssh.ClientConfig{
		User:    "root",
		Timeout: timeout,
		HostKeyCallback: func(_ string, _ net.Addr, k ssh.PublicKey) error {
			key = k
			return errScanned
		},
	}
	c, err := dialOnce(ctx, address, cfg, timeout)
	if err == nil {
		_ = c.Close()
	}
	if key == nil {
		return "", fmt.Errorf("reading the host key of %s: %w", address, err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key))), nil
}
