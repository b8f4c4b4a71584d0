package moto

import (
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/clawdeploy/clawdeploy/internal/loopback"
)

// TestRunIsNotFooledByAnotherServer: when another program holds the port moto_server was given
// (as happened in CI with a port from 127.0.0.1:0), run fails with the log saying so, for Start
// to try another port, rather than hand the test the other program as its emulator.
func TestRunIsNotFooledByAnotherServer(t *testing.T) {
	bin, err := exec.LookPath("moto_server")
	if err != nil {
		t.Fatalf("moto_server is not installed: %v", err)
	}
	port, err := loopback.Port()
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	other := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("not moto")) })}
	go func() { _ = other.Serve(l) }()
	t.Cleanup(func() { _ = other.Close() })

	s := &Server{Endpoint: "http://" + l.Addr().String()}
	log, err := s.run(t, bin, port)
	if err == nil || !loopback.InUse(log) {
		t.Fatalf("run on a taken port: %v, log %q; want an error and a log that says the port is in use", err, log)
	}

	// And Start gets an emulator of its own.
	if s := Start(t); s.Endpoint == "http://"+l.Addr().String() {
		t.Errorf("Start returned the taken port")
	}
}

// TestRequestsCountsWhatTheServerServed: a request is counted by its method and its path, with
// or without a query, and no other path or method is.
func TestRequestsCountsWhatTheServerServed(t *testing.T) {
	s := Start(t)
	s.CreateBucket(t, "counted")
	for range 2 {
		if _, err := s.S3().HeadObject(t.Context(), &s3.HeadObjectInput{Bucket: aws.String("counted"), Key: aws.String("a/b")}); err == nil {
			t.Fatal("head of a missing object succeeded")
		}
	}
	if _, err := s.S3().GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String("counted"), Key: aws.String("a/b"), VersionId: aws.String("v")}); err == nil {
		t.Fatal("get of a missing object succeeded")
	}
	for _, c := range []struct {
		method, path string
		want         int
	}{{"HEAD", "/counted/a/b", 2}, {"GET", "/counted/a/b", 1}, {"HEAD", "/counted/a", 0}, {"PUT", "/counted/a/b", 0}} {
		if got := s.Requests(c.method, c.path); got != c.want {
			t.Errorf("Requests(%s, %s) = %d, want %d", c.method, c.path, got, c.want)
		}
	}
}
