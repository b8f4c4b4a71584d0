// Package prcomment posts a preview's comment on a GitHub pull request, once: the comment that
// carries the same marker is edited, found on whatever page of the pull request's comments it is
// (pulumi/actions, which reads only the first, posts duplicates once there are more: its issues
// #633, #754 and #1382). Only a comment the token's own account wrote is edited: a reviewer who
// quotes the marker keeps their comment.
package prcomment

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/google/go-github/v77/github"
)

// MaxLength is the longest comment GitHub accepts, in characters.
const MaxLength = 65536

// Marker is the hidden line that names a preview comment's project and stack ("*" for a fleet's
// comment), so that the next preview finds the comment and edits it instead of posting another.
func Marker(project, stack string) string {
	return fmt.Sprintf("<!-- clawdeploy-preview project=%s stack=%s -->", project, stack)
}

// markerLine matches any line Marker writes.
var markerLine = regexp.MustCompile(`<!-- clawdeploy-preview [^>]*-->`)

// FindMarker returns the first marker Marker wrote in body, or "" when it carries none.
func FindMarker(body string) string {
	return markerLine.FindString(body)
}

// Result is what Post did.
type Result struct {
	// Action is "created", "updated" or "unchanged".
	Action string `json:"action"`
	ID     int64  `json:"id"`
	URL    string `json:"url"`
	// Pages is how many pages of comments were read to look for the marker.
	Pages int `json:"pages"`
	// Author is the token's account, whose comment alone may be edited.
	Author string `json:"author"`
	// Others is how many comments by other accounts carry the marker (quotes); none is edited.
	Others int `json:"others,omitempty"`
}

// Account is who a token acts as.
type Account struct {
	Login string // as GraphQL writes it: an app's without the "[bot]" the REST API adds
	ID    int64
}

// wrote reports whether the account wrote comment: by the numeric id both APIs give, or by
// login when one of them lacks it.
func (a Account) wrote(comment *github.IssueComment) bool {
	if id := comment.GetUser().GetID(); a.ID != 0 && id != 0 {
		return id == a.ID
	}
	return a.Login != "" && strings.TrimSuffix(comment.GetUser().GetLogin(), "[bot]") == a.Login
}

// WhoAmI returns the token's account, from GraphQL's viewer: GET /user refuses an app's
// installation token, a GitHub Actions workflow's GITHUB_TOKEN among them.
func WhoAmI(ctx context.Context, c *github.Client) (Account, error) {
	req, err := c.NewRequest(http.MethodPost, graphqlURL(c.BaseURL), map[string]string{"query": "query { viewer { login databaseId } }"})
	if err != nil {
		return Account{}, err
	}
	var out struct {
		Data struct {
			Viewer struct {
				Login      string `json:"login"`
				DatabaseID int64  `json:"databaseId"`
			} `json:"viewer"`
		} `json:"data"`
		Errors []struct {
			Message string `json:"message"`
		} `json:"errors"`
	}
	if _, err := c.Do(ctx, req, &out); err != nil {
		return Account{}, explain(err, "asking GitHub whose token this is")
	}
	if len(out.Errors) > 0 || out.Data.Viewer.Login == "" {
		why := "no viewer in the answer"
		if len(out.Errors) > 0 {
			why = out.Errors[0].Message
		}
		return Account{}, fmt.Errorf("asking GitHub whose token this is (GraphQL viewer): %s", why)
	}
	return Account{Login: out.Data.Viewer.Login, ID: out.Data.Viewer.DatabaseID}, nil
}

// graphqlURL is GraphQL's endpoint beside the REST API at base: api.github.com/graphql, or
// HOST/api/graphql on GitHub Enterprise Server (REST at HOST/api/v3/).
func graphqlURL(base *url.URL) string {
	u := *base
	if strings.HasSuffix(u.Path, "/api/v3/") {
		u.Path = strings.TrimSuffix(u.Path, "v3/") + "graphql"
	} else {
		u.Path = strings.TrimSuffix(u.Path, "/") + "/graphql"
	}
	return u.String()
}

// Target is a pull request.
type Target struct {
	Owner, Repo string
	Number      int
}

func (t Target) String() string { return fmt.Sprintf("%s/%s#%d", t.Owner, t.Repo, t.Number) }

// NewClient returns a client for token, on apiURL when it is not empty (GitHub Enterprise
// Server, or a test's fake).
func NewClient(token, apiURL string) (*github.Client, error) {
	c := github.NewClient(nil).WithAuthToken(token)
	if apiURL == "" {
		return c, nil
	}
	return c.WithEnterpriseURLs(apiURL, apiURL)
}

// Post creates the comment, or edits the one the token's account wrote that carries marker.
func Post(ctx context.Context, c *github.Client, t Target, marker, body string) (*Result, error) {
	if n := utf8.RuneCountInString(body); n > MaxLength {
		return nil, fmt.Errorf("the comment is %d characters, more than the %d GitHub accepts", n, MaxLength)
	}
	if !strings.Contains(body, marker) {
		body = marker + "\n" + body
	}
	me, err := WhoAmI(ctx, c)
	if err != nil {
		return nil, err
	}
	res := &Result{Author: me.Login}
	var found *github.IssueComment
	opts := &github.IssueListCommentsOptions{ListOptions: github.ListOptions{PerPage: 100}}
	for {
		page, resp, err := c.Issues.ListComments(ctx, t.Owner, t.Repo, t.Number, opts)
		if err != nil {
			return nil, explain(err, "reading the comments of "+t.String())
		}
		res.Pages++
		for _, comment := range page {
			switch {
			case found != nil || !strings.Contains(comment.GetBody(), marker):
			case me.wrote(comment):
				found = comment
			default:
				res.Others++
			}
		}
		if found != nil || resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	if found != nil && found.GetBody() == body {
		res.Action, res.ID, res.URL = "unchanged", found.GetID(), found.GetHTMLURL()
		return res, nil
	}
	if found != nil {
		edited, _, err := c.Issues.EditComment(ctx, t.Owner, t.Repo, found.GetID(), &github.IssueComment{Body: github.Ptr(body)})
		if err != nil {
			return nil, explain(err, fmt.Sprintf("editing comment %d of %s", found.GetID(), t))
		}
		res.Action, res.ID, res.URL = "updated", edited.GetID(), edited.GetHTMLURL()
		return res, nil
	}
	made, _, err := c.Issues.CreateComment(ctx, t.Owner, t.Repo, t.Number, &github.IssueComment{Body: github.Ptr(body)})
	if err != nil {
		return nil, explain(err, "commenting on "+t.String())
	}
	res.Action, res.ID, res.URL = "created", made.GetID(), made.GetHTMLURL()
	return res, nil
}

// explain words GitHub's refusals as what to do about them.
func explain(err error, doing string) error {
	var (
		rate  *github.RateLimitError
		abuse *github.AbuseRateLimitError
		resp  *github.ErrorResponse
	)
	switch {
	case errors.As(err, &rate):
		return fmt.Errorf("%s: GitHub's rate limit is exhausted until %s", doing, rate.Rate.Reset.UTC().Format("15:04:05 MST"))
	case errors.As(err, &abuse):
		return fmt.Errorf("%s: GitHub's secondary rate limit: retry later (%s)", doing, abuse.Message)
	case errors.As(err, &resp) && resp.Response != nil:
		switch resp.Response.StatusCode {
		case http.StatusUnauthorized:
			return fmt.Errorf("%s: GitHub refused the token (401 %s): check GITHUB_TOKEN", doing, resp.Message)
		case http.StatusForbidden:
			return fmt.Errorf("%s: the token may not do this (403 %s): it needs pull-requests: write", doing, resp.Message)
		case http.StatusNotFound:
			return fmt.Errorf("%s: no such repository or pull request, or the token cannot see it (404)", doing)
		}
	}
	return fmt.Errorf("%s: %w", doing, err)
}
