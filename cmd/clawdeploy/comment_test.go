package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clawdeploy/clawdeploy/internal/githubfake"
)

// TestCommentGitHub runs `clawdeploy comment github` against the fake of GitHub's API: bad
// input exits 2 and posts nothing; a body is posted once and edited after; a wrong token exits 1.
func TestCommentGitHub(t *testing.T) {
	t.Parallel()
	gh := githubfake.Start(t, "gh-token")
	gh.AddPull("acme/infra", 3, 120)
	dir := t.TempDir()
	file := filepath.Join(dir, "comment.md")
	body := "<!-- clawdeploy-preview project=openclaw stack=dev -->\n### clawdeploy preview\n"
	if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	bare := filepath.Join(dir, "bare.md")
	if err := os.WriteFile(bare, []byte("no marker here\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "GITHUB_TOKEN=gh-token", "GITHUB_API_URL="+gh.URL)
	noToken := append(os.Environ(), "GITHUB_TOKEN=", "GITHUB_API_URL="+gh.URL)
	for _, tc := range []struct {
		env  []string
		args []string
		want string
	}{
		{env, []string{"--repo", "acme", "--pr", "3", "--file", file}, "--repo must be owner/name"},
		{env, []string{"--repo", "acme/infra", "--file", file}, "--pr must be a pull request's number"},
		{env, []string{"--repo", "acme/infra", "--pr", "3", "--file", bare}, "carries no clawdeploy-preview marker: pass --marker TEXT"},
		{noToken, []string{"--repo", "acme/infra", "--pr", "3", "--file", file}, "GITHUB_TOKEN is not set"},
	} {
		_, stderr, code := run(t, tc.env, append([]string{"comment", "github"}, tc.args...)...)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q, want 2 and %q", tc.args, code, stderr, tc.want)
		}
	}
	if n := len(gh.Comments("acme/infra", 3)); n != 120 {
		t.Fatalf("refused commands posted: %d comments", n)
	}
	for _, want := range []string{"created", "updated"} {
		stdout, stderr, code := run(t, env, "comment", "github", "--repo", "acme/infra", "--pr", "3", "--file", file, "--json")
		var res struct {
			Type   string `json:"type"`
			Action string `json:"action"`
			URL    string `json:"url"`
		}
		if code != 0 || json.Unmarshal([]byte(stdout), &res) != nil || res.Type != "comment" || res.Action != want ||
			!strings.Contains(res.URL, "/acme/infra/pull/3#issuecomment-") {
			t.Errorf("post: exit %d, %q %s, want %s", code, stdout, stderr, want)
		}
		body += "changed\n"
		if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(gh.Comments("acme/infra", 3)); n != 121 {
		t.Errorf("%d comments, want the 120 and one of ours", n)
	}
	wrong := append(os.Environ(), "GITHUB_TOKEN=stolen", "GITHUB_API_URL="+gh.URL)
	if _, stderr, code := run(t, wrong, "comment", "github", "--repo", "acme/infra", "--pr", "3", "--file", file); code != 1 ||
		!strings.Contains(stderr, "GitHub refused the token (401") {
		t.Errorf("wrong token: exit %d, %s", code, stderr)
	}
}
