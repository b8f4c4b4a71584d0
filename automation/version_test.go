package automation_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/clawdeploy/clawdeploy/automation"
	"github.com/clawdeploy/clawdeploy/internal/enginetest"
)

// TestCLIVersionIsThePinnedOne keeps the version the driver asks for equal to the one `make tools`
// builds (tools/go.mod) and to the SDK the program is compiled with (go.mod).
func TestCLIVersionIsThePinnedOne(t *testing.T) {
	t.Parallel()
	root := enginetest.RepoRoot(t)
	want := "v" + CLIVersion.String()
	for file, module := range map[string]string{
		"tools/go.mod": "github.com/pulumi/pulumi/pkg/v3",
		"go.mod":       "github.com/pulumi/pulumi/sdk/v3",
	} {
		b, err := os.ReadFile(filepath.Join(root, file))
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, line := range strings.Split(string(b), "\n") {
			fields := strings.Fields(line)
			for i := 0; i+1 < len(fields); i++ {
				if fields[i] == module {
					found = true
					if fields[i+1] != want {
						t.Errorf("%s requires %s %s, the driver expects %s", file, module, fields[i+1], want)
					}
				}
			}
		}
		if !found {
			t.Errorf("%s does not require %s", file, module)
		}
	}
}
