// Package openrouterfake is OpenRouter's key management API (GET /keys?offset=N, 100 keys a page,
// as formatted JSON; POST /keys; DELETE /keys/{hash}) on a loopback port, for the tests of a
// deployment's own OpenRouter key. It checks the provisioning key and records what it was asked.
package openrouterfake

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
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
	// hold, when set, makes each creation wait after the key exists, before the answer: a
	// client killed meanwhile leaves a key nobody got.
	hold chan struct{}
	// Holding receives the hash of each creation that waits.
	Holding chan string
}

// Start runs the fake for the test, accepting provisioningKey.
func Start(t testing.TB, provisioningKey string) *Server {
	t.Helper()
	s := &Server{ProvisioningKey: provisioningKey, created: map[string]string{}, Holding: make(chan string, 16)}
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
	case r.Method == http.MethodGet && r.URL.Path == "/api/v1/keys":
		s.list(w, r)
	case r.Method == http.MethodPost && r.URL.Path == "/api/v1/keys":
		var body struct {
			Name string `json:"name"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.Name == "" {
			http.Error(w, `{"error":{"message":"name is required"}}`, http.StatusBadRequest)
			return
		}
		hash := s.add(body.Name)
		if hold := s.hold; hold != nil {
			s.Holding <- hash
			s.mu.Unlock()
			select {
			case <-hold:
			case <-r.Context().Done():
			}
			s.mu.Lock()
		}
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

func (s *Server) add(name string) string {
	s.n++
	hash := fmt.Sprintf("hash%04d", s.n)
	s.created[hash] = name
	return hash
}

// pageSize is how many keys a GET /keys answers at most, as OpenRouter's does.
const pageSize = 100

// list answers GET /keys?offset=N: flat key objects, indented as a pretty-printing server
// would, so that readers cannot depend on one layout.
func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	offset, _ := strconv.Atoi(r.URL.Query().Get("offset"))
	hashes := slices.Sorted(maps.Keys(s.created))
	type key struct {
		Hash     string  `json:"hash"`
		Name     string  `json:"name"`
		Label    string  `json:"label"`
		Disabled bool    `json:"disabled"`
		Limit    *int    `json:"limit"`
		Usage    float64 `json:"usage"`
	}
	page := []key{}
	for i := offset; i >= 0 && i < len(hashes) && len(page) < pageSize; i++ {
		h := hashes[i]
		page = append(page, key{Hash: h, Name: s.created[h], Label: "sk-or-v1-" + h[:4] + "..."})
	}
	b, _ := json.MarshalIndent(map[string]any{"data": page}, "", "  ")
	_, _ = w.Write(b)
}

// Add makes a key named name directly, as another client would; it returns its hash.
func (s *Server) Add(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.add(name)
}

// Hold makes creations wait (see Holding) until Release.
func (s *Server) Hold() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hold = make(chan struct{})
}

// Release lets held creations answer, and later ones answer at once.
func (s *Server) Release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hold != nil {
		close(s.hold)
		s.hold = nil
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
