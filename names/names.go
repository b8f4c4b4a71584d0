// Package names holds the rules for the names that several layers check, each defined once: a
// stack's name, an AWS region's, an environment variable's.
package names

import "regexp"

var (
	// stack is Pulumi's rule for a stack name (tokens.ParseStackName): letters, digits,
	// hyphens, underscores and periods, 1 to 100 of them.
	stack = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,100}$`)
	// region is an AWS region's name: me-central-1, us-gov-west-1.
	region = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)
	// envVar is a portable environment variable's name (POSIX: upper case, digits, underscores,
	// not starting with a digit).
	envVar = regexp.MustCompile(`^[A-Z_][A-Z0-9_]*$`)
)

// StackRule says what IsStack accepts, for messages.
const StackRule = "1 to 100 letters, digits, hyphens, underscores or periods (not . or .., and no /)"

// IsStack tells whether name is a plain Pulumi stack name. A qualified name
// (organization/project/stack) would be a second name for the same stack, and . or .. would be
// read as directories, so neither is one.
func IsStack(name string) bool {
	return stack.MatchString(name) && name != "." && name != ".."
}

// IsRegion tells whether name has the shape of an AWS region's name, like me-central-1.
func IsRegion(name string) bool {
	return region.MatchString(name)
}

// IsZone tells whether name has the shape of an availability zone's name: a region's and a
// letter, like me-central-1a.
func IsZone(name string) bool {
	return len(name) > 1 && name[len(name)-1] >= 'a' && name[len(name)-1] <= 'z' && IsRegion(name[:len(name)-1])
}

// IsEnvVar tells whether name is an environment variable's name a shell and systemd both take:
// upper-case letters, digits and underscores, not starting with a digit.
func IsEnvVar(name string) bool {
	return envVar.MatchString(name)
}
