package automation

import "context"

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
