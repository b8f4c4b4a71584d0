package prcomment

import (
	"net/url"
	"testing"
)

// TestGraphQLBesideREST: GraphQL's endpoint is found beside the REST API's, on github.com and
// on GitHub Enterprise Server.
func TestGraphQLBesideREST(t *testing.T) {
	t.Parallel()
	for rest, want := range map[string]string{
		"https://api.github.com/":               "https://api.github.com/graphql",
		"https://github.example.com/api/v3/":    "https://github.example.com/api/graphql",
		"http://127.0.0.1:4010/prefix/api/v3/":  "http://127.0.0.1:4010/prefix/api/graphql",
		"https://api.github.example.com/ghapi/": "https://api.github.example.com/ghapi/graphql",
	} {
		base, err := url.Parse(rest)
		if err != nil {
			t.Fatal(err)
		}
		if got := graphqlURL(base); got != want {
			t.Errorf("REST at %s: GraphQL at %s, want %s", rest, got, want)
		}
	}
}
