// Package openaifake is a model API for the real OpenClaw in tests: the part of OpenAI's API an
// OpenAI-compatible provider serves (OpenClaw's `openai-completions` adapter, the one it uses for
// a custom provider with a base URL): `GET /v1/models`, and `POST /v1/chat/completions`, answered
// as a `chat.completion` object or, with "stream": true, as `chat.completion.chunk` server-sent
// events ending with `data: [DONE]`, in the shapes of OpenAI's API reference. It answers every
// request with what Reply makes of its messages and keeps every request, so a test sees the
// history the gateway sends.
package openaifake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// Model is the one model the fake serves.
const Model = "echo-1"

// Message is a chat message of a request. Content is a string or a list of content parts; Text
// joins the text of either.
type Message struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

// Text is the message's text.
func (m Message) Text() string {
	var s string
	if json.Unmarshal(m.Content, &s) == nil {
		return s
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	_ = json.Unmarshal(m.Content, &parts)
	var b strings.Builder
	for _, p := range parts {
		b.WriteString(p.Text)
	}
	return b.String()
}

// Request is a chat completion request as the fake kept it.
type Request struct {
	Model    string    `json:"model"`
	Messages []Message `json:"messages"`
	Stream   bool      `json:"stream"`
}

// Server is a running fake.
type Server struct {
	URL string // the API's base URL, ending in /v1
	// Reply makes the assistant's answer to a request's messages.
	Reply func([]Message) string

	mu       sync.Mutex
	requests []Request
}

// Start starts a fake on the loopback, closed when the test ends.
func Start(t testing.TB, reply func([]Message) string) *Server {
	s := &Server{Reply: reply}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/models", s.models)
	mux.HandleFunc("POST /v1/chat/completions", s.completions)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	s.URL = srv.URL + "/v1"
	return s
}

// Requests are the chat completion requests so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

func (s *Server) models(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, map[string]any{"object": "list", "data": []map[string]any{
		{"id": Model, "object": "model", "created": 0, "owned_by": "openaifake"},
	}})
}

func (s *Server) completions(w http.ResponseWriter, r *http.Request) {
	var req Request
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Messages) == 0 {
		w.WriteHeader(http.StatusBadRequest)
		writeJSON(w, map[string]any{"error": map[string]any{"message": fmt.Sprintf("messages is required (%v)", err),
			"type": "invalid_request_error", "param": "messages", "code": nil}})
		return
	}
	s.mu.Lock()
	s.requests = append(s.requests, req)
	n := len(s.requests)
	s.mu.Unlock()
	reply := s.Reply(req.Messages)
	id, created := fmt.Sprintf("chatcmpl-fake%d", n), time.Now().Unix()
	usage := map[string]int{"prompt_tokens": 10, "completion_tokens": len(strings.Fields(reply)), "total_tokens": 10 + len(strings.Fields(reply))}
	if !req.Stream {
		writeJSON(w, map[string]any{"id": id, "object": "chat.completion", "created": created, "model": req.Model,
			"choices": []map[string]any{{"index": 0, "message": map[string]any{"role": "assistant", "content": reply}, "finish_reason": "stop"}},
			"usage":   usage})
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	chunk := func(delta map[string]any, finish any, extra map[string]any) {
		c := map[string]any{"id": id, "object": "chat.completion.chunk", "created": created, "model": req.Model,
			"choices": []map[string]any{{"index": 0, "delta": delta, "finish_reason": finish}}}
		for k, v := range extra {
			c[k] = v
		}
		b, _ := json.Marshal(c)
		_, _ = fmt.Fprintf(w, "data: %s\n\n", b)
	}
	chunk(map[string]any{"role": "assistant", "content": ""}, nil, nil)
	for _, word := range strings.SplitAfter(reply, " ") {
		chunk(map[string]any{"content": word}, nil, nil)
	}
	chunk(map[string]any{}, "stop", map[string]any{"usage": usage})
	_, _ = fmt.Fprint(w, "data: [DONE]\n\n")
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
