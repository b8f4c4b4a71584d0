package targets

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"

	"github.com/clawdeploy/clawdeploy/cost"
)

// PendingCreate is a resource the engine started creating when its process died: it may exist in
// the cloud, unknown to the state.
type PendingCreate struct {
	URN    string
	Type   string
	Inputs map[string]any
	// Known are the ids the state already holds under the same URN: the resource a replacement
	// is replacing carries the same identity, and is never the one being created.
	Known []string
}

// Input returns a string input of the pending create.
func (pc PendingCreate) Input(key string) string {
	v, _ := pc.Inputs[key].(string)
	return v
}

// Finder looks up a resource whose creation was interrupted by its deterministic identity: its
// clawdeploy:urn tag, or the name or the inputs that identify it, leaving out the ids in Known.
// found is false with a nil error only when the resource provably does not exist; an error means
// it could not be told.
type Finder interface {
	Find(ctx context.Context, pc PendingCreate) (id string, found bool, err error)
}

// FinderFunc is a Finder.
type FinderFunc func(ctx context.Context, pc PendingCreate) (string, bool, error)

// Find calls f.
func (f FinderFunc) Find(ctx context.Context, pc PendingCreate) (string, bool, error) {
	return f(ctx, pc)
}

// HostChecker tells whether a deployment's host is still there: for ec2-spot, whether its
// instance was interrupted or terminated. The target's own is used unless the driver's options
// give one.
type HostChecker interface {
	Check(ctx context.Context, stack string, outputs auto.OutputMap) (HostState, error)
}

// HostCheckerFunc is a HostChecker.
type HostCheckerFunc func(ctx context.Context, stack string, outputs auto.OutputMap) (HostState, error)

// Check calls f.
func (f HostCheckerFunc) Check(ctx context.Context, stack string, outputs auto.OutputMap) (HostState, error) {
	return f(ctx, stack, outputs)
}

// HostState is what a HostChecker found.
type HostState struct {
	// Host is the host checked: the instance id.
	Host string
	// Down reports that the host is gone or going: terminated, shutting down, or announced
	// interrupted.
	Down bool
	// Why says what was seen, for the journal and the events.
	Why string
}

// TagCheckpoint marks a snapshot the driver took before an upgrade; its value says why
// (pre-upgrade), beside the data volume's own tags, so `snapshots list` tells it apart.
const TagCheckpoint = "OpenClawCheckpoint"

// Checkpoint is what an upgrade of the OpenClaw image can be undone to: copies of the data taken
// before the new image replaced the instance, and the image the deployment was READY with.
type Checkpoint struct {
	// From is the image the deployment was READY with, To the one the upgrade deploys.
	From string    `json:"from"`
	To   string    `json:"to"`
	At   time.Time `json:"at"`
	// Snapshot is an EBS snapshot of Volume, the data volume, taken at At.
	Snapshot string `json:"snapshot,omitempty"`
	Volume   string `json:"volume,omitempty"`
	// BackupVersion is the S3 version of a backup taken at BackupTakenAt: the one the instance
	// took for the checkpoint (BackupFresh), or, when it did not answer in time (BackupNote says
	// so), the newest one there was. The bucket is versioned, so it stays whatever the new image
	// writes.
	BackupVersion string    `json:"backupVersion,omitempty"`
	BackupTakenAt time.Time `json:"backupTakenAt,omitzero"`
	BackupFresh   bool      `json:"backupFresh,omitempty"`
	BackupNote    string    `json:"backupNote,omitempty"`
}

func (c *Checkpoint) String() string {
	var parts []string
	if c.Snapshot != "" {
		parts = append(parts, fmt.Sprintf("snapshot %s of %s", c.Snapshot, c.Volume))
	}
	if c.BackupVersion != "" {
		kind := "backup"
		if c.BackupFresh {
			kind = "fresh backup"
		}
		parts = append(parts, fmt.Sprintf("%s version %s (taken at %s)", kind, c.BackupVersion, c.BackupTakenAt.UTC().Format(time.RFC3339)))
	}
	if c.BackupNote != "" {
		parts = append(parts, c.BackupNote)
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// Checkpointer takes a pre-upgrade checkpoint of a deployment's data.
type Checkpointer interface {
	Checkpoint(ctx context.Context, stack string, outputs auto.OutputMap, from, to string) (*Checkpoint, error)
}

// FinalSnapshots marks the snapshot a destroy's deletion of the data volume left
// (CreatedBy=final-on-destroy) and returns its id.
type FinalSnapshots interface {
	MarkFinal(ctx context.Context, stack string, outputs auto.OutputMap, since time.Time) ([]string, error)
}

// CostComparison is the monthly cost of what runs now and of what the up would make, in USD.
type CostComparison struct {
	// Now is what the deployed resources cost; nil for a stack not deployed yet.
	Now    *cost.Estimate `json:"now,omitempty"`
	Change *cost.Estimate `json:"change"`
	Delta  float64        `json:"delta"`
}

// IgnoredChange is a configuration key whose new value the program does not apply to an existing
// stack, and what to do instead.
type IgnoredChange struct {
	Key     string `json:"key"`
	From    string `json:"from"`
	To      string `json:"to"`
	Reason  string `json:"reason"`
	Instead string `json:"instead"`
}
