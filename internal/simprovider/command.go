package simprovider

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"

	"github.com/clawdeploy/clawdeploy/sshexec"
)

// act does what the real tls and command providers do for real, where it can be done here: a
// private key is generated, and a remote command runs over SSH against the host its connection
// names (the tests' sshd). out receives the outputs; it is nil for a delete.
func (p *Provider) act(typ, op string, inputs, out resource.PropertyMap) error {
	switch {
	case typ == "tls:index/privateKey:PrivateKey" && op == "create":
		return generateKey(inputs, out)
	case typ == "command:remote:Command":
		return runRemote(op, inputs, out)
	case typ == "command:local:Command":
		return runLocal(op, inputs, out)
	}
	return nil
}

// runLocal runs the command's create (or, for update, create again) or delete here, with its
// interpreter (pulumi-command's default: /bin/sh -c), its environment, and the create's stdout as
// PULUMI_COMMAND_STDOUT, as pulumi-command does.
func runLocal(op string, inputs, out resource.PropertyMap) error {
	command := commandFor(op, inputs)
	if command == "" {
		return nil
	}
	argv := []string{"/bin/sh", "-c"}
	if interp := unwrap(inputs["interpreter"]); interp.IsArray() && len(interp.ArrayValue()) > 0 {
		argv = argv[:0]
		for _, a := range interp.ArrayValue() {
			argv = append(argv, unwrap(a).StringValue())
		}
	}
	cmd := exec.Command(argv[0], append(argv[1:], command)...)
	cmd.Env = os.Environ()
	if env := unwrap(inputs["environment"]); env.IsObject() {
		for k, v := range env.ObjectValue() {
			cmd.Env = append(cmd.Env, string(k)+"="+unwrap(v).StringValue())
		}
	}
	if prev := str(inputs, "stdout"); prev != "" {
		cmd.Env = append(cmd.Env, "PULUMI_COMMAND_STDOUT="+prev)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("simulated local command %s: %w: %s", op, err, stderr.String())
	}
	if out != nil {
		out["stdout"] = resource.NewProperty(strings.TrimRight(stdout.String(), "\n"))
		out["stderr"] = resource.NewProperty(stderr.String())
	}
	return nil
}

func generateKey(inputs, out resource.PropertyMap) error {
	if alg := str(inputs, "algorithm"); alg != "ED25519" {
		return fmt.Errorf("simulated tls: only ED25519 keys, not %q", alg)
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		return err
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return err
	}
	out["privateKeyOpenssh"] = resource.MakeSecret(resource.NewProperty(string(pem.EncodeToMemory(block))))
	out["publicKeyOpenssh"] = resource.NewProperty(string(ssh.MarshalAuthorizedKey(sshPub)))
	return nil
}

// runRemote runs the command's create (create and update, as pulumi-command does without an
// update command) or delete over SSH, with the connection's host key check: no pinned key means
// any key, as the real provider does. The command is given the stdin input on its standard input,
// as the real provider gives it.
func runRemote(op string, inputs, out resource.PropertyMap) error {
	command := commandFor(op, inputs)
	if command == "" {
		return nil
	}
	conn := unwrap(inputs["connection"])
	if !conn.IsObject() {
		return fmt.Errorf("simulated command: no connection")
	}
	c := conn.ObjectValue()
	port := 22
	if v := unwrap(c["port"]); v.IsNumber() {
		port = int(v.NumberValue())
	}
	target := sshexec.Target{
		Host: str(c, "host"), Port: port, User: str(c, "user"),
		PrivateKey: []byte(str(c, "privateKey")), Password: str(c, "password"), HostKey: str(c, "hostKey"),
	}
	target.AllowUnknownHostKey = target.HostKey == ""
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdout string
	var err error
	if stdin := str(inputs, "stdin"); stdin != "" {
		stdout, err = sshexec.Dialer{Timeout: 15 * time.Second, Attempts: 10}.RunWithInput(ctx, target, command, stdin)
	} else {
		stdout, err = sshexec.Dialer{Timeout: 15 * time.Second, Attempts: 10}.Run(ctx, target, command)
	}
	if err != nil {
		return fmt.Errorf("simulated command %s: %w", op, err)
	}
	if out != nil {
		out["stdout"] = resource.NewProperty(stdout)
		out["stderr"] = resource.NewProperty("")
	}
	return nil
}

// commandFor returns the command an operation runs: create for create and update (pulumi-command
// runs create again when there is no update command), delete for delete.
func commandFor(op string, inputs resource.PropertyMap) string {
	if op == "update" {
		op = "create"
	}
	return str(inputs, op)
}

func unwrap(v resource.PropertyValue) resource.PropertyValue {
	for v.IsSecret() {
		v = v.SecretValue().Element
	}
	return v
}

func str(m resource.PropertyMap, k string) string {
	if v := unwrap(m[resource.PropertyKey(k)]); v.IsString() {
		return v.StringValue()
	}
	return ""
}
