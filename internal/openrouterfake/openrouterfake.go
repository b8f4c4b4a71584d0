// Package openrouterfake is OpenRouter's key management API (POST /keys, DELETE /keys/{hash})
// on a loopback port, for the tests of a deployment's own OpenRouter key. It checks the
// provisioning key and records what it was asked.
package openrouterfake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// Server is the fake API; URL is its base, like https://openrouter.ai/api/v1.
type Server struct {
	URL             string
	ProvisioningKey string
	mu              sync.Mutex
	created         map[string]string // hash → name
	deleted         []string
	n               int
}

// Start runs the fake for the test, accepting provisioningKey.
func Start(t testing.TB, provisioningKey string) *Server {
	t.Helper()
	s := &Server{ProvisioningKey: provisioningKey, created: map[string]string{}}
	srv := httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(srv.Close)
	s.URL = srv.URL + "/api/v1"
	return s
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+s.ProvisioningKey {
		http.Error(w, `{"error":{"message":"invalid provisioning key"}}`, http.StatusUnauthorized)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/api/v1/keys":
		var body struct {
			Name string `json:"name"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.Name == "" {
			http.Error(w, `{"error":{"message":"name is required"}}`, http.StatusBadRequest)
			return
		}
		s.n++
		hash := fmt.Sprintf("hash%04d", s.n)
		s.created[hash] = body.Name
		_, _ = fmt.Fprintf(w, `{"data":{"hash":%q,"name":%q,"disabled":false,"limit":null},"key":%q}`, hash, body.Name, Key(hash))
	case r.Method == http.MethodDelete && strings.HasPrefix(r.URL.Path, "/api/v1/keys/"):
		hash := strings.TrimPrefix(r.URL.Path, "/api/v1/keys/")
		if _, ok := s.created[hash]; !ok {
			http.Error(w, `{"error":{"message":"not found"}}`, http.StatusNotFound)
			return
		}
		delete(s.created, hash)
		s.deleted = append(s.deleted, hash)
		_, _ = w.Write([]byte(`{"deleted":true}`))
	default:
		http.NotFound(w, r)
	}
}

// Key is the API key the fake hands out for hash.
func Key(hash string) string { return "sk-or-v1-test-" + hash }

// Live returns the keys that exist, hash → name.
func (s *Server) Live() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]string{}
	for k, v := range s.created {
		out[k] = v
	}
	return out
}

// Deleted returns the hashes deleted so far.
func (s *Server) Deleted() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.deleted...)
}
