package targets

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/clawdeploy/clawdeploy/setup"
)

// TestSetupWaitDefaults: the provisioning flow's numbers. A poll every 30 s for at most 20
// minutes, each poll given 15 s: Poll with no interval and no budget gives its read a deadline
// 15 s away (inside the 20-minute budget).
func TestSetupWaitDefaults(t *testing.T) {
	if DefaultSetupPoll != 30*time.Second || DefaultSetupTimeout != 20*time.Minute || PollBound != 15*time.Second {
		t.Fatalf("defaults: poll every %s, budget %s, each poll %s; want 30s, 20m0s, 15s", DefaultSetupPoll, DefaultSetupTimeout, PollBound)
	}
	var reads []time.Duration
	start := time.Now()
	st, err := Poll(t.Context(), 0, 0, func(setup.Status) {}, func(ctx context.Context) (setup.Status, error) {
		deadline, ok := ctx.Deadline()
		if !ok {
			return setup.Status{}, errors.New("a read without a deadline")
		}
		reads = append(reads, deadline.Sub(start))
		return setup.Status{State: setup.Complete, Token: "t"}, nil
	})
	if err != nil || st.State != setup.Complete || len(reads) != 1 || reads[0] > PollBound+time.Second || reads[0] < PollBound-5*time.Second {
		t.Fatalf("Poll with the defaults: %+v %v, the read's deadline %v after the start; want %s", st, err, reads, PollBound)
	}

}
