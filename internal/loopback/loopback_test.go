package loopback

import (
	"errors"
	"net"
	"strconv"
	"testing"
)

// TestPortIsBelowTheEphemeralRange: the kernel never hands out the ports Port returns, and
// nothing listens on them.
func TestPortIsBelowTheEphemeralRange(t *testing.T) {
	low := ephemeralLow()
	for range 50 {
		port, err := Port()
		if err != nil {
			t.Fatal(err)
		}
		if port < low/2 || port >= low {
			t.Fatalf("port %d is not in [%d, %d)", port, low/2, low)
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			t.Fatalf("port %d is taken: %v", port, err)
		}
		_ = l.Close()
	}
}

// TestServeStartsAgainOnlyWhenThePortWasTaken: a server whose log says its port was taken is
// started again on another port, up to five times; any other failure is returned at once.
func TestServeStartsAgainOnlyWhenThePortWasTaken(t *testing.T) {
	taken := []byte("Address already in use\nPort 23456 is in use by another program.")
	var tried []int
	port, err := Serve(func(port int) ([]byte, error) {
		tried = append(tried, port)
		if len(tried) < 3 {
			return taken, errors.New("exited")
		}
		return nil, nil
	})
	if err != nil || len(tried) != 3 || port != tried[2] {
		t.Errorf("Serve = %d, %v after %v; want the third port", port, err, tried)
	}

	tried = nil
	if _, err := Serve(func(port int) ([]byte, error) {
		tried = append(tried, port)
		return []byte("FATAL: data directory has wrong ownership"), errors.New("exited")
	}); err == nil || len(tried) != 1 {
		t.Errorf("another failure: %v after %d tries; want it returned after 1", err, len(tried))
	}

	tried = nil
	if _, err := Serve(func(port int) ([]byte, error) {
		tried = append(tried, port)
		return taken, errors.New("exited")
	}); err == nil || len(tried) != attempts {
		t.Errorf("always taken: %v after %d tries; want an error after %d", err, len(tried), attempts)
	}
}
