package prcomment_test

import (
	"strings"
	"testing"

	"github.com/clawdeploy/clawdeploy/internal/githubfake"
	"github.com/clawdeploy/clawdeploy/prcomment"
)

const marker = "<!-- clawdeploy-preview project=openclaw stack=dev -->"

// TestPostFindsItsCommentOnAnyPage runs against the fake of GitHub's API (githubfake): a pull
// request with 250 comments of others gets one comment; the next post, with the marker now on
// the third page of 100, edits it instead of posting a second; the same body again changes
// nothing.
func TestPostFindsItsCommentOnAnyPage(t *testing.T) {
	t.Parallel()
	gh := githubfake.Start(t, "gh-token")
	gh.AddPull("acme/infra", 7, 250)
	c, err := prcomment.NewClient("gh-token", gh.URL)
	if err != nil {
		t.Fatal(err)
	}
	target := prcomment.Target{Owner: "acme", Repo: "infra", Number: 7}
	res, err := prcomment.Post(t.Context(), c, target, marker, marker+"\nfirst preview")
	if err != nil || res.Action != "created" || res.Pages != 3 {
		t.Fatalf("first post: %+v %v", res, err)
	}
	gh.AddPull("acme/infra", 7, 30) // more comments come after ours
	res, err = prcomment.Post(t.Context(), c, target, marker, marker+"\nsecond preview")
	if err != nil || res.Action != "updated" || res.Pages != 3 {
		t.Fatalf("second post: %+v %v", res, err)
	}
	res, err = prcomment.Post(t.Context(), c, target, marker, marker+"\nsecond preview")
	if err != nil || res.Action != "unchanged" {
		t.Fatalf("third post: %+v %v", res, err)
	}
	ours := 0
	for _, comment := range gh.Comments("acme/infra", 7) {
		if strings.Contains(comment.Body, marker) {
			ours++
			if !strings.HasSuffix(comment.Body, "second preview") {
				t.Errorf("our comment: %q", comment.Body)
			}
		}
	}
	if ours != 1 || len(gh.Comments("acme/infra", 7)) != 281 {
		t.Errorf("%d comments of ours among %d", ours, len(gh.Comments("acme/infra", 7)))
	}
	for _, r := range gh.Requests() {
		if strings.HasPrefix(r, "GET") && !strings.Contains(r, "per_page=100") {
			t.Errorf("a page read without per_page=100: %s", r)
		}
	}
}

// TestPostEditsOnlyItsOwnComment: a reviewer quotes the marker in a comment on the first page;
// our comment is on the third. A post edits ours and leaves the reviewer's as it was; on a pull
// request where only the reviewer's carries the marker, a post creates our own. The token is a
// GitHub Actions token, which GET /user refuses: the account comes from GraphQL's viewer.
func TestPostEditsOnlyItsOwnComment(t *testing.T) {
	t.Parallel()
	gh := githubfake.Start(t, "gh-token")
	gh.AddPull("acme/infra", 7, 10)
	reviewer := githubfake.Account{Login: "octocat", ID: 583231}
	quoted := "Why does the preview say this?\n> " + marker + "\n> 1 to replace"
	theirs := gh.AddComment("acme/infra", 7, reviewer, quoted)
	c, err := prcomment.NewClient("gh-token", gh.URL)
	if err != nil {
		t.Fatal(err)
	}
	target := prcomment.Target{Owner: "acme", Repo: "infra", Number: 7}
	res, err := prcomment.Post(t.Context(), c, target, marker, marker+"\nfirst preview")
	if err != nil || res.Action != "created" {
		t.Fatalf("first post beside a reviewer's quote: %+v %v", res, err)
	}
	ours := res.ID
	gh.AddPull("acme/infra", 7, 250)
	res, err = prcomment.Post(t.Context(), c, target, marker, marker+"\nsecond preview")
	if err != nil || res.Action != "updated" || res.ID != ours || res.Author != "github-actions" {
		t.Fatalf("second post: %+v %v, want comment %d updated as github-actions", res, err, ours)
	}
	for _, comment := range gh.Comments("acme/infra", 7) {
		switch comment.ID {
		case theirs:
			if comment.Body != quoted {
				t.Errorf("the reviewer's comment was edited: %q", comment.Body)
			}
		case ours:
			if comment.Body != marker+"\nsecond preview" || comment.User != githubfake.Actions.Login {
				t.Errorf("our comment: %+v", comment)
			}
		}
	}
	if n := len(gh.Comments("acme/infra", 7)); n != 262 {
		t.Errorf("%d comments, want 262 (10 + the quote + ours + 250)", n)
	}
}

// TestPostSaysWhatGitHubRefused: a wrong token, an unknown pull request, the rate limit and a
// body too long are each a clear error.
func TestPostSaysWhatGitHubRefused(t *testing.T) {
	t.Parallel()
	gh := githubfake.Start(t, "gh-token")
	gh.AddPull("acme/infra", 7, 0)
	target := prcomment.Target{Owner: "acme", Repo: "infra", Number: 7}
	post := func(token string, t2 prcomment.Target, body string) error {
		c, err := prcomment.NewClient(token, gh.URL)
		if err != nil {
			t.Fatal(err)
		}
		_, err = prcomment.Post(t.Context(), c, t2, marker, body)
		return err
	}
	for _, tc := range []struct {
		name  string
		err   error
		wants string
	}{
		{"wrong token", post("stolen", target, "x"), "GitHub refused the token (401 Bad credentials): check GITHUB_TOKEN"},
		{"unknown pull", post("gh-token", prcomment.Target{Owner: "acme", Repo: "infra", Number: 8}, "x"), "acme/infra#8: no such repository or pull request"},
		{"too long", post("gh-token", target, strings.Repeat("é", prcomment.MaxLength+1)), "more than the 65536 GitHub accepts"},
	} {
		if tc.err == nil || !strings.Contains(tc.err.Error(), tc.wants) {
			t.Errorf("%s: %v, want %q", tc.name, tc.err, tc.wants)
		}
	}
	gh.RateLimit()
	if err := post("gh-token", target, "x"); err == nil || !strings.Contains(err.Error(), "rate limit is exhausted until") {
		t.Errorf("rate limit: %v", err)
	}
	if n := len(gh.Comments("acme/infra", 7)); n != 0 {
		t.Errorf("%d comments posted by refused requests", n)
	}
}

// TestMarkerIsFoundAgain: the marker a preview writes is the one comment github finds in the
// body, for one stack and for a fleet's comment.
func TestMarkerIsFoundAgain(t *testing.T) {
	t.Parallel()
	for _, stack := range []string{"dev", "*"} {
		m := prcomment.Marker("openclaw", stack)
		if got := prcomment.FindMarker("text before\n" + m + "\n### clawdeploy preview\n"); got != m {
			t.Errorf("FindMarker found %q, want %q", got, m)
		}
	}
	if got := prcomment.Marker("openclaw", "dev"); got != marker {
		t.Errorf("Marker wrote %q, want %q", got, marker)
	}
	if got := prcomment.FindMarker("<!-- another tool's marker -->"); got != "" {
		t.Errorf("FindMarker found %q in a body without clawdeploy's marker", got)
	}
}
