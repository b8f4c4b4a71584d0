// Package imdsfake is an instance metadata service for tests that enforces IMDSv2: every read
// needs a token from PUT /latest/api/token, as it does on an instance whose metadata options
// require tokens. It serves the instance id and, once Rebalance or Interrupt is called, a
// rebalance recommendation or a Spot interruption notice, in the shapes EC2 documents
// (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/rebalance-recommendations.html,
// spot-instance-termination-notices.html): 404 until then.
package imdsfake

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// InstanceID is the id the fake reports.
const InstanceID = "i-0123456789abcdef0"

// Server is a running fake.
type Server struct {
	URL string

	mu          sync.Mutex
	tokens      map[string]bool
	notice      string
	noticeAt    time.Time
	rebalance   string
	unauthReads int
	reads       int
}

// Start serves the fake until the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{tokens: map[string]bool{}}
	srv := httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

// Interrupt makes the spot/instance-action document appear, as two minutes before a Spot
// interruption, and returns when it did.
func (s *Server) Interrupt() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.noticeAt = time.Now()
	s.notice = `{"action": "terminate", "time": "` + s.noticeAt.Add(2*time.Minute).UTC().Format(time.RFC3339) + `"}`
	return s.noticeAt
}

// Rebalance makes the events/recommendations/rebalance document appear, as when EC2 sees the
// instance at elevated risk of interruption, and returns when it did.
func (s *Server) Rebalance() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	at := time.Now()
	s.rebalance = `{"noticeTime": "` + at.UTC().Format(time.RFC3339) + `"}`
	return at
}

// Reads returns how many metadata reads came with a valid token and how many without.
func (s *Server) Reads() (withToken, withoutToken int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reads, s.unauthReads
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.URL.Path == "/latest/api/token" {
		if r.Method != http.MethodPut || r.Header.Get("X-aws-ec2-metadata-token-ttl-seconds") == "" {
			http.Error(w, "token requests are PUT with a TTL header", http.StatusBadRequest)
			return
		}
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		token := hex.EncodeToString(b)
		s.tokens[token] = true
		_, _ = w.Write([]byte(token))
		return
	}
	if !s.tokens[r.Header.Get("X-aws-ec2-metadata-token")] {
		s.unauthReads++
		http.Error(w, "", http.StatusUnauthorized)
		return
	}
	s.reads++
	switch r.URL.Path {
	case "/latest/meta-data/instance-id":
		_, _ = w.Write([]byte(InstanceID))
	case "/latest/meta-data/spot/instance-action":
		if s.notice == "" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte(s.notice))
	case "/latest/meta-data/events/recommendations/rebalance":
		if s.rebalance == "" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte(s.rebalance))
	default:
		http.NotFound(w, r)
	}
}
