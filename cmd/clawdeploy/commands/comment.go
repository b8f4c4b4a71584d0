package commands

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/clawdeploy/clawdeploy/prcomment"
)

// repoName is GitHub's owner/name.
var repoName = regexp.MustCompile(`^([A-Za-z0-9-]+)/([A-Za-z0-9._-]+)$`)

// Comment posts a preview's comment.
var Comment = &cli.Command{
	Name:  "comment",
	Usage: "post a preview's comment on a pull request",
	Subcommands: []*cli.Command{{
		Name:      "github",
		Usage:     "create the pull request's comment, or edit the one that carries the same marker",
		ArgsUsage: " ",
		Description: `Posts the Markdown body that "clawdeploy preview --comment FILE" wrote. The
comment that carries the file's marker (or --marker TEXT, which a file without one
needs) is edited instead of posting another, on whatever page of the pull
request's comments it is: every page is read. Only a comment the token's own
account wrote is edited (the account comes from GraphQL's viewer); a reviewer's
comment that quotes the marker is left alone.

The token comes from GITHUB_TOKEN (it needs pull-requests: write); --api-url (or
GITHUB_API_URL) points at GitHub Enterprise Server.

Exit codes: 0 posted (created, updated or unchanged); 1 GitHub refused (a bad
token, no such repository or pull request, the rate limit); 2 bad usage (no token,
no marker, a body over 65,536 characters): nothing was posted.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "repo", Usage: "the repository, owner/name"},
			&cli.IntFlag{Name: "pr", Usage: "the pull request's number"},
			&cli.StringFlag{Name: "file", Usage: "the comment's body (Markdown), as preview --comment wrote it"},
			&cli.StringFlag{Name: "marker", Usage: "the text that identifies the comment, for a file without a marker"},
			&cli.StringFlag{Name: "api-url", Usage: "the GitHub API's URL (GitHub Enterprise Server)", EnvVars: []string{"GITHUB_API_URL"}},
		},
		Action: func(cliContext *cli.Context) error {
			m := repoName.FindStringSubmatch(cliContext.String("repo"))
			if m == nil {
				return usageError("--repo must be owner/name, got %q", cliContext.String("repo"))
			}
			target := prcomment.Target{Owner: m[1], Repo: m[2], Number: cliContext.Int("pr")}
			if target.Number <= 0 {
				return usageError("--pr must be a pull request's number, got %d", target.Number)
			}
			if cliContext.String("file") == "" {
				return usageError("--file is required: the body preview --comment wrote")
			}
			body, err := os.ReadFile(cliContext.String("file"))
			if err != nil {
				return usageError("--file: %v", err)
			}
			marker := cliContext.String("marker")
			if marker == "" {
				if marker = prcomment.FindMarker(string(body)); marker == "" {
					return usageError("%s carries no clawdeploy-preview marker: pass --marker TEXT to name the comment to edit", cliContext.String("file"))
				}
			}
			if n := len([]rune(string(body))); n > prcomment.MaxLength {
				return usageError("%s is %d characters, more than the %d GitHub accepts", cliContext.String("file"), n, prcomment.MaxLength)
			}
			token := strings.TrimSpace(os.Getenv("GITHUB_TOKEN"))
			if token == "" {
				return usageError("GITHUB_TOKEN is not set: the token needs pull-requests: write")
			}
			client, err := prcomment.NewClient(token, cliContext.String("api-url"))
			if err != nil {
				return usageError("--api-url: %v", err)
			}
			res, err := prcomment.Post(cliContext.Context, client, target, marker, string(body))
			if err != nil {
				return err
			}
			if cliContext.Bool("json") {
				return json.NewEncoder(os.Stdout).Encode(struct {
					Time time.Time `json:"time"`
					Type string    `json:"type"`
					*prcomment.Result
				}{time.Now().UTC(), "comment", res})
			}
			fmt.Printf("%s comment %d of %s on %s: %s\n", res.Action, res.ID, res.Author, target, res.URL)
			if res.Others > 0 {
				fmt.Printf("left alone: %d comment(s) of other accounts carrying the marker\n", res.Others)
			}
			return nil
		},
	}},
}
