package setup

import (
	"crypto/sha256"
	_ "embed" // the setup script
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Files of the protocol, in the root directory of the host (DefaultRoot).
const (
	ScriptFile   = "openclaw-setup.sh"
	LogFile      = "openclaw-setup.log"
	StartedFile  = ".openclaw-setup-started"
	CompleteFile = ".openclaw-setup-complete"
	ErrorFile    = ".openclaw-setup-error"
	TokenFile    = ".openclaw-setup-token"
	LockFile     = ".openclaw-setup.lock"
	// LaunchLockFile serialises launchers for the few milliseconds a launch takes; LockFile is
	// held by the running script for its whole run.
	LaunchLockFile = ".openclaw-setup-launch.lock"
)

// DefaultRoot is where the protocol's files live on a host.
const DefaultRoot = "/root"

// ExitBusy is the launch command's exit code when a different setup script is still running.
const ExitBusy = 75

// Script is the setup script, shared by every target.
//
//go:embed openclaw-setup.sh
var Script []byte

// Hash returns the hex SHA-256 of a script: the identity the launch and completion markers use.
func Hash(script []byte) string {
	sum := sha256.Sum256(script)
	return hex.EncodeToString(sum[:])
}

// Launch describes one launch of the setup script.
type Launch struct {
	// Root is the directory of the protocol's files; empty means DefaultRoot.
	Root string
	// Script is the script to run; nil means Script.
	Script []byte
	// SourcePath, when set, is a file on the host that already holds Script (cloud-init wrote it):
	// the command copies it instead of carrying the script inline.
	SourcePath string
	// EnvFile is the settings file the script reads; empty means its own default.
	EnvFile string
	// Env, when set, is the settings file's content: the command writes it to EnvFile (mode 0600,
	// atomically) in the same session, before it starts the script. It is part of the launch's
	// identity, so changed settings relaunch the script.
	Env []byte
	// Files are written in the same session too, each atomically with its mode, before the script
	// starts: what a bare host needs besides the script (a vps has no cloud-init to write them).
	// They are part of the launch's identity.
	Files []File
}

// File is one file put on a host: by cloud-init's write_files on ec2-spot, by the launch on a vps.
type File struct {
	// Path is absolute.
	Path string
	// Mode is octal, like "0644".
	Mode    string
	Content string
}

// ID returns the launch's identity, recorded in the started and complete markers: the script's
// hash, or, when the launch carries settings or files, the hash of all of them.
func (l Launch) ID() string {
	script := l.Script
	if script == nil {
		script = Script
	}
	if l.Env == nil && l.Files == nil {
		return Hash(script)
	}
	whole := slices.Concat(script, []byte("\x00settings\x00"), l.Env)
	for _, f := range l.Files {
		whole = fmt.Appendf(whole, "\x00file\x00%s\x00%s\x00%s", f.Path, f.Mode, f.Content)
	}
	return Hash(whole)
}

// Command returns the shell command that launches the setup script: one session, under a second.
//
// Launchers take turns on LaunchLockFile. Then the run lock (LockFile) decides: held by a script
// with this hash: do nothing; held by another script: exit ExitBusy; free and complete with this
// hash: do nothing. Otherwise the command writes the script atomically (verified against its
// hash), clears the old markers, records the hash in the started marker and starts the script
// with setsid nohup, detached from the session, handing it the run lock. It prints one line:
// "LAUNCH started", "LAUNCH already-complete", "LAUNCH already-running" or "LAUNCH busy …".
func (l Launch) Command() string {
	root := l.Root
	if root == "" {
		root = DefaultRoot
	}
	script := l.Script
	if script == nil {
		script = Script
	}
	var materialize string
	if l.SourcePath != "" {
		materialize = fmt.Sprintf("cp %s \"$tmp\"", quote(l.SourcePath))
	} else {
		materialize = fmt.Sprintf("printf '%%s' '%s' | base64 -d > \"$tmp\"", base64.StdEncoding.EncodeToString(script))
	}
	env := ""
	if l.EnvFile != "" {
		env = " OPENCLAW_ENV_FILE=" + quote(l.EnvFile)
	}
	// The script's own hash verifies what was written; without settings it is the launch id,
	// and the command is the same as it always was (an ec2-spot instance's user-data holds it:
	// a change would replace the instance).
	sum, verify := []string(nil), "$hash"
	var writeFiles []string
	if l.Env != nil || l.Files != nil {
		sum, verify = []string{"sum=" + Hash(script)}, "$sum"
	}
	if l.Env != nil {
		if l.EnvFile == "" {
			panic("setup: a Launch with Env needs an EnvFile")
		}
		writeFiles = append(writeFiles, writeFile(File{Path: l.EnvFile, Mode: "0600", Content: string(l.Env)}))
	}
	for _, f := range l.Files {
		writeFiles = append(writeFiles, writeFile(f))
	}
	return strings.Join(slices.Concat([]string{
		"set -eu",
		"umask 077",
		"root=" + quote(root),
		"hash=" + l.ID(),
	}, sum, []string{
		`mkdir -p "$root"`,
		`exec 8>>"$root/` + LaunchLockFile + `"`,
		`flock -w 30 8`,
		`exec 9>>"$root/` + LockFile + `"`,
		`if ! flock -n 9; then`,
		`  if [ "$(cat "$root/` + StartedFile + `" 2>/dev/null)" = "$hash" ]; then echo 'LAUNCH already-running'; exit 0; fi`,
		fmt.Sprintf(`  echo 'LAUNCH busy: another setup script is running'; exit %d`, ExitBusy),
		`fi`,
		`if [ "$(cat "$root/` + CompleteFile + `" 2>/dev/null)" = "$hash" ]; then echo 'LAUNCH already-complete'; exit 0; fi`,
		`tmp="$root/.` + ScriptFile + `.tmp"`,
		materialize,
		`if [ "$(sha256sum "$tmp" | cut -d ' ' -f 1)" != "` + verify + `" ]; then rm -f "$tmp"; echo 'LAUNCH corrupt: the script does not match its hash'; exit 1; fi`,
		`chmod 700 "$tmp"`,
		`mv -f "$tmp" "$root/` + ScriptFile + `"`,
		`rm -f "$root/` + CompleteFile + `" "$root/` + ErrorFile + `" "$root/` + TokenFile + `"`,
	}, writeFiles, []string{
		`printf '%s\n' "$hash" > "$root/` + StartedFile + `"`,
		`OPENCLAW_SETUP_ROOT="$root" OPENCLAW_SETUP_LOCKED=1` + env +
			` setsid nohup bash "$root/` + ScriptFile + `" </dev/null >"$root/` + LogFile + `" 2>&1 8>&- &`,
		`echo 'LAUNCH started'`,
	}), "\n")
}

// writeFile returns the command line that writes f atomically: a temporary file next to it,
// then a rename. Missing directories are made readable by all (umask 022), like a package would.
func writeFile(f File) string {
	if !path.IsAbs(f.Path) || !modePattern.MatchString(f.Mode) {
		panic(fmt.Sprintf("setup: file %q with mode %q: want an absolute path and an octal mode", f.Path, f.Mode))
	}
	p := quote(f.Path)
	return fmt.Sprintf(`(umask 022 && mkdir -p "$(dirname %[1]s)") && printf '%%s' '%[2]s' | base64 -d > %[1]s.tmp && chmod %[3]s %[1]s.tmp && mv -f %[1]s.tmp %[1]s`,
		p, base64.StdEncoding.EncodeToString([]byte(f.Content)), f.Mode)
}

var modePattern = regexp.MustCompile(`^0[0-7]{3}$`)

// PollCommand returns the shell command that reports the setup's state in one line:
// "COMPLETE <token>", "FAILED <reason>", "RUNNING" or "NOT_STARTED". A script that started and
// no longer holds the lock without leaving a result (the host restarted, or it was killed) is
// reported as FAILED, so nobody waits for it forever. The lock is read before the markers: a
// script writes its markers before it lets go of the lock, so what the markers say then is final.
func PollCommand(root string) string {
	if root == "" {
		root = DefaultRoot
	}
	return strings.Join([]string{
		"root=" + quote(root),
		`if flock -n "$root/` + LockFile + `" true 2>/dev/null; then running=no; else running=yes; fi`,
		`if [ -f "$root/` + CompleteFile + `" ]; then printf 'COMPLETE %s\n' "$(cat "$root/` + TokenFile + `" 2>/dev/null)"`,
		`elif [ -f "$root/` + ErrorFile + `" ]; then printf 'FAILED %s\n' "$(head -n 1 "$root/` + ErrorFile + `" | sed 's/^FAILED: //')"`,
		`elif [ "$running" = yes ]; then echo RUNNING`,
		`elif [ -f "$root/` + StartedFile + `" ]; then echo 'FAILED the setup script stopped without a result; see ` + LogFile + `'`,
		`else echo NOT_STARTED; fi`,
	}, "\n")
}

// State is the setup's state as the poll reports it.
type State string

// The states of the protocol.
const (
	NotStarted State = "NOT_STARTED"
	Running    State = "RUNNING"
	Complete   State = "COMPLETE"
	Failed     State = "FAILED"
)

// Status is one parsed poll line.
type Status struct {
	State State
	// Token is the gateway token, for Complete.
	Token string
	// Reason is what failed, for Failed: "FAILED: line N: command" from the error marker.
	Reason string
}

// ParseStatus parses the line a poll printed.
func ParseStatus(line string) (Status, error) {
	line = strings.TrimSpace(line)
	word, rest, _ := strings.Cut(line, " ")
	rest = strings.TrimSpace(rest)
	switch State(word) {
	case NotStarted, Running:
		return Status{State: State(word)}, nil
	case Complete:
		return Status{State: Complete, Token: rest}, nil
	case Failed:
		return Status{State: Failed, Reason: rest}, nil
	}
	return Status{}, fmt.Errorf("unrecognised setup status line %q", line)
}

// AsRoot returns command as user runs it as root: as it is for root; for any other user through
// passwordless sudo (sudo -n), which fails at once instead of waiting for a password. Images
// log in as debian, ubuntu or almalinux with such a sudo; the setup, its launch and its polls
// need root.
func AsRoot(user, command string) string {
	if user == "root" {
		return command
	}
	return "sudo -n -H bash -c " + quote(command)
}

// ShellAsRoot is the command that runs, as root, the shell commands it reads on its standard
// input, as user logs in: for root a shell; for any other user a shell through passwordless
// sudo. What is sent that way is in no process's arguments on the host, where any local user
// reads them in /proc: the way to send a launch that carries secrets.
func ShellAsRoot(user string) string {
	return AsRoot(user, "bash -s")
}

// Bounded returns command so that the host itself ends it, with every process it started,
// after d (whole seconds, rounded up): coreutils' timeout runs it in a process group of its own
// and kills that group. A client that gives up on a command closes its connection, but the
// command runs on, a poll blocked on a file for ever; bounded, it ends by itself.
func Bounded(command string, d time.Duration) string {
	seconds := max(1, int((d+time.Second-1)/time.Second))
	return fmt.Sprintf("timeout -s KILL %d bash -c %s", seconds, quote(command))
}

// quote returns s as one single-quoted shell word.
func quote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Under returns files with their paths moved under dir: a test's stand-in for a host's root.
func Under(dir string, files []File) []File {
	moved := make([]File, len(files))
	for i, f := range files {
		f.Path = path.Join(dir, f.Path)
		moved[i] = f
	}
	return moved
}
