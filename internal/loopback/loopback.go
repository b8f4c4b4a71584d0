// Package loopback gives the tests' servers that are told their port (moto_server, sshd,
// PostgreSQL) one of their own on 127.0.0.1.
//
// A port the kernel handed out for 127.0.0.1:0 and released is free for the kernel to hand out
// again, to any other program's listener or outgoing connection, before the server binds it: in
// a loaded CI run a moto_server found its port taken that way. The kernel never hands out a port
// below its ephemeral range, so Port picks one there; only another test picking the same port at
// the same moment can take it first, and Serve then starts the server again on another.
package loopback

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// attempts is how many ports Serve tries before it gives up.
const attempts = 5

// Port returns a loopback port below the kernel's ephemeral range that nothing listens on now.
func Port() (int, error) {
	low := ephemeralLow()
	for range 100 {
		port := low/2 + rand.IntN(low/2)
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue
		}
		_ = l.Close()
		return port, nil
	}
	return 0, fmt.Errorf("loopback: no free port found between %d and %d in 100 tries", low/2, low-1)
}

// ephemeralLow is the lowest port of the kernel's ephemeral range (32768 when unknown).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	fields := strings.Fields(string(b))
	if len(fields) == 0 {
		return 32768
	}
	low, err := strconv.Atoi(fields[0])
	if err != nil || low < 2048 {
		return 32768
	}
	return low
}

// Serve starts a server on a port from Port and returns the port. start launches the server on
// port and returns once it serves, or with an error and the server's log when it did not; a
// server whose log says its port was taken meanwhile is started again on another port.
func Serve(start func(port int) (log []byte, err error)) (int, error) {
	for attempt := 1; ; attempt++ {
		port, err := Port()
		if err != nil {
			return 0, err
		}
		log, err := start(port)
		if err == nil {
			return port, nil
		}
		if !InUse(log) || attempt == attempts {
			return 0, err
		}
	}
}

// InUse reports whether a server's log says the port it was given was taken.
func InUse(log []byte) bool {
	return bytes.Contains(log, []byte("Address already in use")) || bytes.Contains(log, []byte("is in use by another program"))
}
