package names

import (
	"strings"
	"testing"
)

func TestRules(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		rule string
		is   func(string) bool
		name string
		want bool
	}{
		{"stack", IsStack, "customer-42", true},
		{"stack", IsStack, "dev_1.b", true},
		{"stack", IsStack, strings.Repeat("a", 100), true},
		{"stack", IsStack, strings.Repeat("a", 101), false},
		{"stack", IsStack, "org/project/dev", false},
		{"stack", IsStack, ".", false},
		{"stack", IsStack, "..", false},
		{"stack", IsStack, "", false},
		{"region", IsRegion, "me-central-1", true},
		{"region", IsRegion, "us-gov-west-1", true},
		{"region", IsRegion, "me-central-1a", false},
		{"region", IsRegion, "Me-central-1", false},
		{"zone", IsZone, "me-central-1a", true},
		{"zone", IsZone, "us-gov-west-1b", true},
		{"zone", IsZone, "me-central-1", false},
		{"zone", IsZone, "me-central-1A", false},
		{"zone", IsZone, "a", false},
		{"env var", IsEnvVar, "OPENROUTER_API_KEY", true},
		{"env var", IsEnvVar, "_X1", true},
		{"env var", IsEnvVar, "1X", false},
		{"env var", IsEnvVar, "lower", false},
		{"env var", IsEnvVar, "A-B", false},
	} {
		if got := c.is(c.name); got != c.want {
			t.Errorf("%s %q: %v, want %v", c.rule, c.name, got, c.want)
		}
	}
}
