// Package githubfake is the part of GitHub's REST API that posts a pull request's comments, as
// GitHub documents it (https://docs.github.com/en/rest/issues/comments,
// https://docs.github.com/en/rest/using-the-rest-api/using-pagination-in-the-rest-api):
//
//   - GET /repos/{owner}/{repo}/issues/{number}/comments lists them, oldest first, per_page at a
//     time (30 unless asked, at most 100), with a link header whose rel="next" and rel="last" name
//     the other pages, omitted when everything fits on one;
//   - POST to the same path creates one (201), PATCH /repos/{owner}/{repo}/issues/comments/{id}
//     edits one (200), whoever wrote it (a token that may write to a pull request may edit any
//     of its comments, as a maintainer may);
//   - each comment's user is its author's account: login and numeric id, an app's login with the
//     "[bot]" suffix (github-actions[bot], id 41898282, for a workflow's GITHUB_TOKEN);
//   - GET /user refuses an app's installation token (403 "Resource not accessible by
//     integration"), the GitHub Actions token among them; POST /graphql (/api/graphql on GitHub
//     Enterprise Server) answers `viewer { login databaseId }` for any token, an app's login
//     without the suffix (https://docs.github.com/en/graphql/reference/queries#viewer);
//   - a token other than the one given is refused with 401 "Bad credentials", an unknown
//     repository or pull request with 404 "Not Found", a body over 65,536 characters with 422
//     "Validation Failed", and, once RateLimit is set, every request with the primary rate limit's
//     403 and x-ratelimit-remaining: 0.
//
// Paths may carry GitHub Enterprise Server's /api/v3 prefix.
package githubfake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

// Comment is one comment of a pull request.
type Comment struct {
	ID     int64
	Body   string
	User   string
	UserID int64
}

// Account is who a token acts as.
type Account struct {
	Login string // as the REST API writes it, "name[bot]" for an app
	ID    int64
}

// Actions is the account of a GitHub Actions workflow's GITHUB_TOKEN.
var Actions = Account{Login: "github-actions[bot]", ID: 41898282}

// Server is a running fake.
type Server struct {
	URL     string
	token   string
	account Account

	mu          sync.Mutex
	pulls       map[string][]Comment // "owner/repo#number" -> comments
	nextID      int64
	rateLimited bool
	requests    []string
}

// Start serves the fake until the test ends; requests must carry token, a GitHub Actions
// workflow's token (see Actions).
func Start(t testing.TB, token string) *Server {
	t.Helper()
	s := &Server{token: token, account: Actions, pulls: map[string][]Comment{}, nextID: 1000}
	srv := httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

// AddPull makes a pull request exist, with n comments from others already on it.
func (s *Server) AddPull(repo string, number, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := fmt.Sprintf("%s#%d", repo, number)
	if s.pulls[key] == nil {
		s.pulls[key] = []Comment{}
	}
	for i := range n {
		s.addLocked(key, reviewer, fmt.Sprintf("comment %d by a reviewer", i+1))
	}
}

// reviewer writes the comments AddPull adds.
var reviewer = Account{Login: "reviewer", ID: 583231}

// AddComment adds a comment by another account to a pull request that exists, and returns its id.
func (s *Server) AddComment(repo string, number int, by Account, body string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addLocked(fmt.Sprintf("%s#%d", repo, number), by, body)
}

func (s *Server) addLocked(key string, by Account, body string) int64 {
	s.nextID++
	s.pulls[key] = append(s.pulls[key], Comment{ID: s.nextID, Body: body, User: by.Login, UserID: by.ID})
	return s.nextID
}

// Comments returns a pull request's comments, oldest first.
func (s *Server) Comments(repo string, number int) []Comment {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Comment(nil), s.pulls[fmt.Sprintf("%s#%d", repo, number)]...)
}

// RateLimit makes every later request fail with the primary rate limit.
func (s *Server) RateLimit() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rateLimited = true
}

// Requests returns the requests served, as "METHOD path?query".
func (s *Server) Requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.requests...)
}

var (
	listPath = regexp.MustCompile(`^/repos/([^/]+/[^/]+)/issues/(\d+)/comments$`)
	editPath = regexp.MustCompile(`^/repos/([^/]+/[^/]+)/issues/comments/(\d+)$`)
)

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, r.Method+" "+r.URL.RequestURI())
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	auth := r.Header.Get("Authorization")
	if auth != "Bearer "+s.token && auth != "token "+s.token {
		fail(w, http.StatusUnauthorized, "Bad credentials", "https://docs.github.com/rest")
		return
	}
	if s.rateLimited {
		w.Header().Set("X-RateLimit-Limit", "5000")
		w.Header().Set("X-RateLimit-Remaining", "0")
		w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10))
		fail(w, http.StatusForbidden, "API rate limit exceeded for user ID 1.",
			"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api")
		return
	}
	if r.URL.Path == "/graphql" || r.URL.Path == "/api/graphql" {
		s.graphql(w, r)
		return
	}
	path := strings.TrimPrefix(r.URL.Path, "/api/v3")
	if path == "/user" {
		fail(w, http.StatusForbidden, "Resource not accessible by integration", "https://docs.github.com/rest/users/users#get-the-authenticated-user")
		return
	}
	if m := listPath.FindStringSubmatch(path); m != nil {
		key := m[1] + "#" + m[2]
		comments, ok := s.pulls[key]
		if !ok {
			fail(w, http.StatusNotFound, "Not Found", "https://docs.github.com/rest/issues/comments#list-issue-comments")
			return
		}
		switch r.Method {
		case http.MethodGet:
			s.list(w, r, comments)
		case http.MethodPost:
			body, ok := s.body(w, r)
			if !ok {
				return
			}
			s.addLocked(key, s.account, body)
			c := s.pulls[key][len(s.pulls[key])-1]
			w.WriteHeader(http.StatusCreated)
			_ = json.NewEncoder(w).Encode(render(m[1], m[2], c))
		default:
			fail(w, http.StatusNotFound, "Not Found", "")
		}
		return
	}
	if m := editPath.FindStringSubmatch(path); m != nil && r.Method == http.MethodPatch {
		id, _ := strconv.ParseInt(m[2], 10, 64)
		for key, comments := range s.pulls {
			if !strings.HasPrefix(key, m[1]+"#") {
				continue
			}
			for i, c := range comments {
				if c.ID != id {
					continue
				}
				body, ok := s.body(w, r)
				if !ok {
					return
				}
				comments[i].Body = body
				_, number, _ := strings.Cut(key, "#")
				_ = json.NewEncoder(w).Encode(render(m[1], number, comments[i]))
				return
			}
		}
	}
	fail(w, http.StatusNotFound, "Not Found", "")
}

// graphql answers the one query the fake knows, the viewer's login and id.
func (s *Server) graphql(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Query string `json:"query"`
	}
	if r.Method != http.MethodPost || json.NewDecoder(r.Body).Decode(&in) != nil {
		fail(w, http.StatusBadRequest, "Problems parsing JSON", "https://docs.github.com/graphql")
		return
	}
	if !strings.Contains(in.Query, "viewer") {
		_ = json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]string{{"message": "the fake answers only viewer"}}})
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"data": map[string]any{"viewer": map[string]any{
		"login": strings.TrimSuffix(s.account.Login, "[bot]"), "databaseId": s.account.ID}}})
}

// list answers one page, with its link header.
func (s *Server) list(w http.ResponseWriter, r *http.Request, comments []Comment) {
	perPage, page := 30, 1
	if v, err := strconv.Atoi(r.URL.Query().Get("per_page")); err == nil && v > 0 {
		perPage = min(v, 100)
	}
	if v, err := strconv.Atoi(r.URL.Query().Get("page")); err == nil && v > 0 {
		page = v
	}
	last := max((len(comments)+perPage-1)/perPage, 1)
	link := func(p int, rel string) string {
		q := r.URL.Query()
		q.Set("page", strconv.Itoa(p))
		q.Set("per_page", strconv.Itoa(perPage))
		return fmt.Sprintf(`<%s%s?%s>; rel="%s"`, s.URL, r.URL.Path, q.Encode(), rel)
	}
	var links []string
	if page > 1 {
		links = append(links, link(page-1, "prev"))
	}
	if page < last {
		links = append(links, link(page+1, "next"), link(last, "last"))
	}
	if page > 1 {
		links = append(links, link(1, "first"))
	}
	if len(links) > 0 {
		w.Header().Set("Link", strings.Join(links, ", "))
	}
	m := listPath.FindStringSubmatch(strings.TrimPrefix(r.URL.Path, "/api/v3"))
	out := []map[string]any{}
	for i := (page - 1) * perPage; i < min(page*perPage, len(comments)); i++ {
		out = append(out, render(m[1], m[2], comments[i]))
	}
	_ = json.NewEncoder(w).Encode(out)
}

// body reads a create or edit request's body, refusing one over GitHub's limit.
func (s *Server) body(w http.ResponseWriter, r *http.Request) (string, bool) {
	var in struct {
		Body string `json:"body"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Body == "" {
		fail(w, http.StatusUnprocessableEntity, "Invalid request.\n\n\"body\" wasn't supplied.", "")
		return "", false
	}
	if utf8.RuneCountInString(in.Body) > 65536 {
		w.WriteHeader(http.StatusUnprocessableEntity)
		_ = json.NewEncoder(w).Encode(map[string]any{"message": "Validation Failed", "errors": []map[string]string{{
			"resource": "IssueComment", "code": "custom", "field": "body", "message": "body is too long (maximum is 65536 characters)"}},
			"documentation_url": "https://docs.github.com/rest/issues/comments#create-an-issue-comment"})
		return "", false
	}
	return in.Body, true
}

func render(repo, number string, c Comment) map[string]any {
	return map[string]any{
		"id": c.ID, "node_id": fmt.Sprintf("IC_%d", c.ID), "body": c.Body,
		"url":      fmt.Sprintf("https://api.github.com/repos/%s/issues/comments/%d", repo, c.ID),
		"html_url": fmt.Sprintf("https://github.com/%s/pull/%s#issuecomment-%d", repo, number, c.ID),
		"user":     map[string]any{"login": c.User, "id": c.UserID, "type": userType(c.User)},
	}
}

func userType(login string) string {
	if strings.HasSuffix(login, "[bot]") {
		return "Bot"
	}
	return "User"
}

func fail(w http.ResponseWriter, code int, message, doc string) {
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"message": message, "documentation_url": doc, "status": strconv.Itoa(code)})
}
