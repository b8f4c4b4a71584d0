// Package dlmfake is a fake of Amazon Data Lifecycle Manager's API on a loopback port, for tests
// of what reads a stack's snapshot policy: moto has no DLM. It answers the two reads the REST-JSON
// API documents, GetLifecyclePolicies (GET /policies, filtered by the targetTags "key=value",
// state and policyIds query parameters, summaries only) and GetLifecyclePolicy (GET
// /policies/{policyId}, the whole policy: details, schedules with their create and retain rules,
// dates in ISO 8601), and a ResourceNotFoundException for an id it does not hold, as the SDK
// expects them. Point an SDK at it with AWS_ENDPOINT_URL_DLM.
package dlmfake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Policy is one EBS snapshot policy with one schedule.
type Policy struct {
	ID, Description, State string
	// TargetTags select the volumes it snapshots; Tags are the policy's own.
	TargetTags, Tags map[string]string
	// IntervalHours and Times are the create rule, RetainCount the retain rule.
	IntervalHours int
	Times         []string
	RetainCount   int
	CopyTags      bool
	Created       time.Time
}

// Server is the fake.
type Server struct {
	URL      string
	mu       sync.Mutex
	policies []Policy
	calls    int
}

// Start serves policies until the test ends.
func Start(t testing.TB, policies ...Policy) *Server {
	t.Helper()
	s := &Server{policies: policies}
	srv := httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

// Calls counts the requests answered.
func (s *Server) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

type tag struct {
	Key   string `json:"Key"`
	Value string `json:"Value"`
}

func tags(m map[string]string) []tag {
	var out []tag
	for k, v := range m {
		out = append(out, tag{k, v})
	}
	slices.SortFunc(out, func(a, b tag) int { return strings.Compare(a.Key, b.Key) })
	return out
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.calls++
	policies := slices.Clone(s.policies)
	s.mu.Unlock()
	if r.Method != http.MethodGet {
		fail(w, http.StatusBadRequest, "InvalidRequestException", "the fake answers GetLifecyclePolicies and GetLifecyclePolicy only")
		return
	}
	switch {
	case r.URL.Path == "/policies":
		q := r.URL.Query()
		summaries := []map[string]any{}
		for _, p := range policies {
			if !matches(p, q["targetTags"], q.Get("state"), q["policyIds"]) {
				continue
			}
			summaries = append(summaries, map[string]any{"PolicyId": p.ID, "Description": p.Description, "State": p.State,
				"Tags": p.Tags, "PolicyType": "EBS_SNAPSHOT_MANAGEMENT", "DefaultPolicy": false})
		}
		writeJSON(w, map[string]any{"Policies": summaries})
	case strings.HasPrefix(r.URL.Path, "/policies/"):
		id := strings.TrimPrefix(r.URL.Path, "/policies/")
		for _, p := range policies {
			if p.ID == id {
				writeJSON(w, map[string]any{"Policy": document(p)})
				return
			}
		}
		fail(w, http.StatusNotFound, "ResourceNotFoundException", "Policy "+id+" does not exist")
	default:
		fail(w, http.StatusNotFound, "ResourceNotFoundException", "no such path "+r.URL.Path)
	}
}

// matches applies GetLifecyclePolicies' filters: every "key=value" target tag, the state, the ids.
func matches(p Policy, targetTags []string, state string, ids []string) bool {
	for _, kv := range targetTags {
		k, v, _ := strings.Cut(kv, "=")
		if p.TargetTags[k] != v {
			return false
		}
	}
	return (state == "" || p.State == state) && (len(ids) == 0 || slices.Contains(ids, p.ID))
}

func document(p Policy) map[string]any {
	created := p.Created.UTC().Format("2006-01-02T15:04:05.000Z")
	return map[string]any{
		"PolicyId": p.ID, "Description": p.Description, "State": p.State, "StatusMessage": "ENABLED",
		"ExecutionRoleArn": "arn:aws:iam::123456789012:role/dlm", "DateCreated": created, "DateModified": created,
		"PolicyArn": "arn:aws:dlm:me-central-1:123456789012:policy/" + p.ID, "Tags": p.Tags,
		"PolicyDetails": map[string]any{
			"PolicyType": "EBS_SNAPSHOT_MANAGEMENT", "ResourceTypes": []string{"VOLUME"}, "TargetTags": tags(p.TargetTags),
			"Schedules": []map[string]any{{
				"Name": "every " + fmt.Sprint(p.IntervalHours) + " hours", "CopyTags": p.CopyTags,
				"TagsToAdd":  []tag{{"SnapshotCreator", "dlm"}},
				"CreateRule": map[string]any{"Interval": p.IntervalHours, "IntervalUnit": "HOURS", "Times": p.Times},
				"RetainRule": map[string]any{"Count": p.RetainCount},
			}},
		},
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// fail answers as the REST-JSON protocol does: the type in X-Amzn-Errortype and the body.
func fail(w http.ResponseWriter, code int, typ, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amzn-Errortype", typ)
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"Message": message, "Code": typ})
}
