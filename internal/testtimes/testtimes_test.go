package testtimes

import (
	"strings"
	"testing"
	"time"
)

const stream = `{"Action":"start","Package":"example.com/a"}
{"Action":"run","Package":"example.com/a","Test":"TestSlow"}
{"Action":"output","Package":"example.com/a","Test":"TestSlow","Output":"ok\n"}
{"Action":"pass","Package":"example.com/a","Test":"TestSlow/k=1","Elapsed":4}
{"Action":"pass","Package":"example.com/a","Test":"TestSlow/k=2","Elapsed":6.5}
{"Action":"pass","Package":"example.com/a","Test":"TestSlow","Elapsed":7}
{"Action":"fail","Package":"example.com/a","Test":"TestFast","Elapsed":0.2}
{"Action":"skip","Package":"example.com/a","Test":"TestSkipped","Elapsed":0}
{"Action":"fail","Package":"example.com/a","Elapsed":7.5}
# example.com/b [build failed]
{"Action":"pass","Package":"example.com/b/c","Test":"TestMiddle","Elapsed":1.25}
{"Action":"pass","Package":"example.com/b/c","Elapsed":1.3}
`

// TestReadAndWrite: packages by wall time, tests and subtests slowest first, counts by action;
// a line that is not an event is passed over.
func TestReadAndWrite(t *testing.T) {
	rep, err := Read(strings.NewReader(stream))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Packages) != 2 || len(rep.Tests) != 6 {
		t.Fatalf("%d packages and %d tests, want 2 and 6", len(rep.Packages), len(rep.Tests))
	}
	top := Slowest(rep.Tests, 2, Result.Top)
	if len(top) != 2 || top[0].Test != "TestSlow" || top[0].Elapsed != 7*time.Second || top[1].Test != "TestMiddle" {
		t.Errorf("the two slowest tests: %+v", top)
	}
	var out strings.Builder
	if err := rep.Write(&out, 2); err != nil {
		t.Fatal(err)
	}
	want := `packages by wall time:
       7.5s  fail example.com/a
       1.3s  pass example.com/b/c
the 2 slowest tests:
       7.0s  pass a.TestSlow
       1.2s  pass c.TestMiddle
the 2 slowest subtests:
       6.5s  pass a.TestSlow/k=2
       4.0s  pass a.TestSlow/k=1
tests: 2 passed, 1 failed, 1 skipped; subtests: 2 passed, 0 failed, 0 skipped
`
	if out.String() != want {
		t.Errorf("report:\n%s\nwant:\n%s", out.String(), want)
	}
}
