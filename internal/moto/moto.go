// Package moto starts moto_server, the AWS API emulator, on a loopback port for one test, and
// stops it when the test ends. moto is more lenient than AWS and has no DLM; tests use it for the
// S3, SSM and EC2 calls the project makes itself, and seed it with the helpers here.
package moto

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/clawdeploy/clawdeploy/internal/loopback"
)

// Region is the region the emulator's clients use.
const Region = "me-central-1"

// Server is a running moto_server.
type Server struct {
	// Endpoint is its URL, http://127.0.0.1:<port>.
	Endpoint string
	log      string // the server's log file: a line for each request it served
}

// Start runs moto_server for the test. A missing moto_server fails the test: the tests that use
// it are the proof that the scripts work, so they never skip.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := exec.LookPath("moto_server")
	if err != nil {
		t.Fatalf("moto_server is not installed (pip install 'moto[server]'): %v", err)
	}
	var s *Server
	if _, err := loopback.Serve(func(port int) ([]byte, error) {
		s = &Server{Endpoint: fmt.Sprintf("http://127.0.0.1:%d", port)}
		return s.run(t, bin, port)
	}); err != nil {
		t.Fatal(err)
	}
	return s
}

// run starts moto_server on port and waits until it answers, or returns its log and why not.
func (s *Server) run(t testing.TB, bin string, port int) ([]byte, error) {
	cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", fmt.Sprint(port))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	log, err := os.CreateTemp(t.TempDir(), "moto-*.log")
	if err != nil {
		return nil, err
	}
	defer func() { _ = log.Close() }()
	s.log = log.Name()
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting moto_server: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	})
	// The server says it is running once it has bound the port: only then is what answers it.
	running := []byte("Running on " + s.Endpoint)
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-exited:
			b, _ := os.ReadFile(log.Name())
			return b, fmt.Errorf("moto_server on port %d exited:\n%s", port, b)
		default:
		}
		b, _ := os.ReadFile(log.Name())
		resp, err := http.Get(s.Endpoint + "/moto-api/")
		if err == nil {
			_ = resp.Body.Close()
			if bytes.Contains(b, running) {
				return nil, nil
			}
			err = fmt.Errorf("something answered before the server said it was running")
		}
		if time.Now().After(deadline) {
			return b, fmt.Errorf("moto_server did not answer on %s within 30s: %w\n%s", s.Endpoint, err, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Requests counts the requests the server has served with method on path (a path-style
// "/bucket/key", say), whatever their query: how a test waits for a client's next request rather
// than for a time it guessed.
func (s *Server) Requests(method, path string) int {
	b, _ := os.ReadFile(s.log)
	prefix := []byte(`"` + method + " " + path)
	n := 0
	for line := range bytes.Lines(b) {
		if i := bytes.Index(line, prefix); i >= 0 {
			if rest := line[i+len(prefix):]; len(rest) > 0 && (rest[0] == ' ' || rest[0] == '?') {
				n++
			}
		}
	}
	return n
}

// Env is the environment that points the AWS CLI and SDKs at the emulator, with fake credentials
// and no shared config, appended to the test process's own environment minus any AWS settings.
func (s *Server) Env() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	return append(env,
		"AWS_ENDPOINT_URL="+s.Endpoint,
		"AWS_ACCESS_KEY_ID=test",
		"AWS_SECRET_ACCESS_KEY=test",
		"AWS_REGION="+Region,
		"AWS_DEFAULT_REGION="+Region,
		"AWS_CONFIG_FILE=/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE=/dev/null",
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_PAGER=",
	)
}

// Config is an AWS SDK configuration for the emulator. S3 clients need path-style addressing.
func (s *Server) Config() aws.Config {
	return aws.Config{
		Region:       Region,
		BaseEndpoint: aws.String(s.Endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
	}
}

// AWS runs the AWS CLI against the emulator and returns its standard output; a failure fails the
// test.
func (s *Server) AWS(t testing.TB, args ...string) string {
	t.Helper()
	out, err := s.TryAWS(args...)
	if err != nil {
		t.Fatalf("aws %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// TryAWS runs the AWS CLI against the emulator and returns its output and any error, with
// standard error in it.
func (s *Server) TryAWS(args ...string) (string, error) {
	cmd := exec.Command("aws", args...)
	cmd.Env = s.Env()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("%w: %s", err, stderr.String())
	}
	return string(out), nil
}

// S3 is an S3 client of the emulator (path-style addressing, which it needs). The tests observe
// and seed the emulator through the SDK: an AWS CLI start costs about a second of CPU, which a
// loaded machine pays many times over in a loop. The scripts under test keep the real CLI.
func (s *Server) S3() *s3.Client {
	return s3.NewFromConfig(s.Config(), func(o *s3.Options) { o.UsePathStyle = true })
}

// SSM is an SSM client of the emulator.
func (s *Server) SSM() *ssm.Client { return ssm.NewFromConfig(s.Config()) }

// CreateBucket creates a versioned bucket, as the BackupBucket component does.
func (s *Server) CreateBucket(t testing.TB, name string) {
	t.Helper()
	client := s.S3()
	if _, err := client.CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: &name,
		CreateBucketConfiguration: &s3types.CreateBucketConfiguration{LocationConstraint: s3types.BucketLocationConstraint(Region)}}); err != nil {
		t.Fatalf("creating bucket %s: %v", name, err)
	}
	if _, err := client.PutBucketVersioning(t.Context(), &s3.PutBucketVersioningInput{Bucket: &name,
		VersioningConfiguration: &s3types.VersioningConfiguration{Status: s3types.BucketVersioningStatusEnabled}}); err != nil {
		t.Fatalf("versioning bucket %s: %v", name, err)
	}
}

// PutSecureString stores (or overwrites) a SecureString parameter, as the Secrets component does.
func (s *Server) PutSecureString(t testing.TB, name, value string) {
	t.Helper()
	if _, err := s.SSM().PutParameter(t.Context(), &ssm.PutParameterInput{Name: &name, Value: &value,
		Type: ssmtypes.ParameterTypeSecureString, Overwrite: aws.Bool(true)}); err != nil {
		t.Fatalf("putting parameter %s: %v", name, err)
	}
}

// Parameter returns a parameter's value, decrypted; a failure fails the test.
func (s *Server) Parameter(t testing.TB, name string) string {
	t.Helper()
	out, err := s.SSM().GetParameter(t.Context(), &ssm.GetParameterInput{Name: &name, WithDecryption: aws.Bool(true)})
	if err != nil {
		t.Fatalf("getting parameter %s: %v", name, err)
	}
	return aws.ToString(out.Parameter.Value)
}

// Volume creates a 20 GiB volume in zone and returns its id.
func (s *Server) Volume(t testing.TB, zone string) string {
	t.Helper()
	out, err := ec2.NewFromConfig(s.Config()).CreateVolume(t.Context(), &ec2.CreateVolumeInput{AvailabilityZone: &zone, Size: aws.Int32(20)})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.VolumeId)
}

// Instance runs an instance of moto's first image in zone and returns its id.
func (s *Server) Instance(t testing.TB, zone string) string {
	t.Helper()
	client := ec2.NewFromConfig(s.Config())
	images, err := client.DescribeImages(t.Context(), &ec2.DescribeImagesInput{})
	if err != nil || len(images.Images) == 0 {
		t.Fatalf("moto's images: %v", err)
	}
	out, err := client.RunInstances(t.Context(), &ec2.RunInstancesInput{ImageId: images.Images[0].ImageId, MinCount: aws.Int32(1),
		MaxCount: aws.Int32(1), InstanceType: ec2types.InstanceTypeT4gSmall, Placement: &ec2types.Placement{AvailabilityZone: &zone}})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.Instances[0].InstanceId)
}

// Snapshot snapshots volume with tags, given as key, value, key, value…, and returns its id.
func (s *Server) Snapshot(t testing.TB, volume string, tags ...string) string {
	t.Helper()
	var list []ec2types.Tag
	for i := 0; i+1 < len(tags); i += 2 {
		list = append(list, ec2types.Tag{Key: aws.String(tags[i]), Value: aws.String(tags[i+1])})
	}
	out, err := ec2.NewFromConfig(s.Config()).CreateSnapshot(t.Context(), &ec2.CreateSnapshotInput{VolumeId: &volume,
		TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeSnapshot, Tags: list}}})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.SnapshotId)
}
