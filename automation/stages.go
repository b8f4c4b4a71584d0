package automation

import (
	"slices"
	"sync"
)

// Stages are one target's stages in order, and the resource types whose completion marks each
// (a component's outputs registered, or a custom resource created). The last two stages come from
// the setup's completion poll, not the engine.
type Stages struct {
	Order  []string
	ByType map[string]string
	// Optional stages are passed over when a deployment does not have them: the recorded stage
	// moves past one that is not done once the next required stage is.
	Optional []string
}

// Setup stages, shared by every target.
const (
	StageSetupLaunched = "setup_script_launched"
	StageSetupComplete = "setup_complete"
)

// stageTracker follows the stages an operation completes. Resources finish in parallel, so
// stages complete in any order: each completion is reported as it happens, and the deployment's
// stage is the furthest one whose predecessors (in Order) have all completed, so everything up to
// the recorded stage is done.
type stageTracker struct {
	stages Stages
	mu     sync.Mutex
	done   map[string]bool
	prefix int // index in Order of the recorded stage; -1 for none
}

func newStageTracker(stages Stages, current string) *stageTracker {
	t := &stageTracker{stages: stages, done: map[string]bool{}, prefix: slices.Index(stages.Order, current)}
	for _, s := range stages.Order[:t.prefix+1] {
		t.done[s] = true
	}
	return t
}

// complete records that a stage completed. It reports whether the stage is news, and returns the
// deployment's stage when that moved.
func (t *stageTracker) complete(stage string) (news bool, recorded string, moved bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done[stage] || !slices.Contains(t.stages.Order, stage) {
		return false, "", false
	}
	t.done[stage] = true
	start := t.prefix
	for {
		next := t.prefix + 1
		for next < len(t.stages.Order) && !t.done[t.stages.Order[next]] && slices.Contains(t.stages.Optional, t.stages.Order[next]) {
			next++
		}
		if next >= len(t.stages.Order) || !t.done[t.stages.Order[next]] {
			break
		}
		t.prefix = next
	}
	if t.prefix == start {
		return true, "", false
	}
	return true, t.stages.Order[t.prefix], true
}

// forType returns the stage a resource type's completion marks.
func (t *stageTracker) forType(typ string) (string, bool) {
	s, ok := t.stages.ByType[typ]
	return s, ok
}
