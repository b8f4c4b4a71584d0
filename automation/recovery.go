package automation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optrefresh"
	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
)

// The recovery steps of DESIGN.md ("The driver"), in the order every operation that changes a
// stack runs them after taking the lease (lease.go, step 1):
//
//	2. recover: stop what a dead owner left running, cancel the backend locks of dead
//	   processes (judgeLocks: a live one is never touched), repair torn state files;
//	3. resolvePending: pending creates looked up by the target's finder, found ones imported,
//	   provably absent ones dropped, other pending operations refreshed away;
//	4. the operation itself (operations.go), each engine run under withLockRecovery.

// recover runs recovery step 2 before any operation that changes a stack, so that a plain up
// after a crash is as safe as a resume, and returns the stack: what a dead owner left running is
// stopped; locks of dead processes are removed and files a killed write left behind are repaired
// (both before the stack is loaded, which they can prevent); then the stack is opened. Step 3
// (pending creates) is resolvePending, which callers run once the configuration is checked.
func (d *Driver) recover(ctx context.Context, h *hold, create bool) (auto.Stack, error) {
	d.stopLeftovers(h.stack, h.prev.LeaseOwner)
	dead, _, err := d.judgedLocks(ctx, h, false)
	if err != nil {
		return auto.Stack{}, err
	}
	fileBackend := d.fileBackendDir() != ""
	if len(dead) > 0 && fileBackend {
		if err := d.removeLockFiles(h.stack); err != nil {
			return auto.Stack{}, fmt.Errorf("removing the stale backend lock of %s: %w", h.stack, err)
		}
		d.note(h.stack, "cancelled %d backend lock(s) of dead processes", len(dead))
	}
	if repaired, err := d.repairFileState(h.stack); err != nil {
		return auto.Stack{}, fmt.Errorf("repairing the state files of %s: %w", h.stack, err)
	} else if len(repaired) > 0 {
		d.note(h.stack, "removed %s, left torn by a killed write", strings.Join(repaired, ", "))
	}
	s, err := d.stack(ctx, h.stack, create)
	if err != nil {
		return auto.Stack{}, err
	}
	if err := d.claimTarget(ctx, s); err != nil {
		return auto.Stack{}, err
	}
	if len(dead) > 0 && !fileBackend {
		// An s3:// backend: the locks judged dead go through the CLI.
		if err := s.Cancel(ctx); err != nil {
			return auto.Stack{}, fmt.Errorf("cancelling the stale backend lock of %s: %w", h.stack, err)
		}
		d.note(h.stack, "cancelled %d backend lock(s) of dead processes", len(dead))
	}
	return s, nil
}

// judgedLocks reads the stack's backend locks and judges them (judgeLocks): it returns those
// that remain once orphans were stopped, every one provably dead, or the *LockHeldError of a
// live one. With force a live lock is returned too, and a note says whose it is. readable is
// false for a backend whose locks cannot be read beforehand (the engine's refusal names them:
// withLockRecovery).
func (d *Driver) judgedLocks(ctx context.Context, h *hold, force bool) (locks []Lock, readable bool, err error) {
	locks, readable, err = d.readLocks(ctx, h.stack)
	if err != nil {
		return nil, readable, fmt.Errorf("reading the backend locks of %s: %w", h.stack, err)
	}
	if len(locks) == 0 {
		return nil, readable, nil
	}
	if err := d.judgeLocks(h, locks); err != nil {
		var held *LockHeldError
		if !force || !errors.As(err, &held) {
			return nil, readable, err
		}
		for _, l := range held.Locks {
			d.emit(h.stack, Event{Type: EventDiagnostic, Severity: "warning", Message: fmt.Sprintf(
				"--force: removing the state lock of pid %d on %s (user %s, taken %s), which may be a live process",
				l.PID, l.Host, l.User, l.At.UTC().Format(time.RFC3339))})
		}
	}
	locks, _, err = d.readLocks(ctx, h.stack) // orphans stopped may have released theirs
	if err != nil {
		return nil, readable, fmt.Errorf("reading the backend locks of %s: %w", h.stack, err)
	}
	return locks, readable, nil
}

// judgeLocks decides whether a stack's locks may be broken: it returns a *LockHeldError for a
// lock a live process holds (or may hold), and interrupts, and waits for, a Pulumi CLI that is
// provably the orphan of a dead driver.
func (d *Driver) judgeLocks(h *hold, locks []Lock) error {
	host, _ := os.Hostname()
	prevHost := ""
	if o, err := ParseOwner(h.prev.LeaseOwner); err == nil {
		prevHost = o.Host
	}
	for _, l := range locks {
		switch {
		case l.Host == host && processAlive(l.PID):
			// A live process here: stop it only when it is provably an orphan of a dead driver.
			owner := ProcessOwner(l.PID)
			if owner == "" || owner == d.owner || !ownerDeadHere()(owner) {
				return &LockHeldError{Stack: h.stack, Locks: locks}
			}
			d.note(h.stack, "interrupting pid %d, a Pulumi CLI left running by %s", l.PID, owner)
			stop([]int{l.PID}, d.drain)
		case l.Host == host:
			// Gone from this host: provably dead.
		case l.Host == prevHost && h.prev.LeaseOwner != "":
			// The lease of that host's driver expired, or ended at its interruption, before we
			// took it: whatever engine it ran has stopped or was killed.
		default:
			return &LockHeldError{Stack: h.stack, Locks: locks}
		}
	}
	return nil
}

// stopLeftovers is recovery step 2's first half: the Pulumi CLI and provider plugins that prev,
// the deployment's previous owner, started may still run (the CLI in its own process group
// survives its driver). Each gets an interrupt, so a CLI writes its state and releases its
// lock, then a kill after the drain.
func (d *Driver) stopLeftovers(stack, prev string) {
	if prev == "" || prev == d.owner {
		return
	}
	if n := stopOrphans(prev, d.drain); n > 0 {
		d.note(stack, "stopped %d processes left by %s", n, prev)
	}
}

// withLockRecovery runs op and, when the backend still refuses it for a lock (a backend whose
// locks cannot be read beforehand, or a lock taken since), judges the locks the refusal names: a
// lock of a dead process is cancelled and op runs again; a lock held by a live process is never
// touched. op must not change the state before it takes the lock.
func (d *Driver) withLockRecovery(ctx context.Context, h *hold, s auto.Stack, op func() error) error {
	err := op()
	locks, locked := parseLocks(err)
	if !locked {
		return err
	}
	if err := d.judgeLocks(h, locks); err != nil {
		return err
	}
	if err := s.Cancel(ctx); err != nil {
		return fmt.Errorf("cancelling the stale backend lock of %s: %w", h.stack, err)
	}
	d.note(h.stack, "cancelled %d backend lock(s) of dead processes", len(locks))
	return op()
}

// resolvePending is recovery step 3: each pending create is looked up by the finder; found ones
// join the state with their ids, provably absent ones are dropped, and the other pending
// operations (updates, deletes) are left to a refresh, which reads every resource back. With
// refresh set that refresh runs here; without, the caller's next engine run must refresh (an
// `up --refresh`) when settled says the state was changed. A create the finder cannot decide
// stops the resume: dropping it could leave a duplicate.
//
// The state is edited here rather than with `refresh --import-pending-creates`: in the pinned CLI
// that flag turns the operations into "importing" ones that the refresh then drops, and the
// resources are created a second time (seen in the kill tests).
func (d *Driver) resolvePending(ctx context.Context, h *hold, s auto.Stack, refresh bool) (settled bool, err error) {
	if pending, known := d.pendingOnDisk(h.stack); known && !pending {
		return false, nil // the file backend's state file says so: no CLI run to export it
	}
	exported, err := s.Export(ctx)
	if err != nil {
		return false, fmt.Errorf("reading the state of %s: %w", h.stack, err)
	}
	if len(exported.Deployment) == 0 {
		return false, nil
	}
	var state apitype.DeploymentV3
	if err := json.Unmarshal(exported.Deployment, &state); err != nil {
		return false, fmt.Errorf("reading the state of %s: %w", h.stack, err)
	}
	if len(state.PendingOperations) == 0 {
		return false, nil
	}
	// A replacement's new resource carries the identity of the one it replaces, which the state
	// holds under the same URN: those ids are never the one being created.
	known := map[string][]string{}
	for _, r := range state.Resources {
		if r.ID != "" {
			known[string(r.URN)] = append(known[string(r.URN)], string(r.ID))
		}
	}
	found := map[string]string{}
	for _, op := range state.PendingOperations {
		if op.Type != apitype.OperationTypeCreating {
			d.note(h.stack, "pending %s of %s: the refresh reads it back", op.Type, op.Resource.URN)
			continue
		}
		pc := PendingCreate{URN: string(op.Resource.URN), Type: string(op.Resource.Type), Inputs: op.Resource.Inputs,
			Known: known[string(op.Resource.URN)]}
		id, ok, err := d.finder.Find(ctx, pc)
		if err != nil {
			return false, fmt.Errorf("looking up %s, whose creation was interrupted: %w", pc.URN, err)
		}
		switch {
		case ok && !slices.Contains(pc.Known, id):
			d.note(h.stack, "pending create of %s found as %s: adding it to the state", pc.URN, id)
			found[pc.URN] = id
		case len(pc.Known) > 0:
			d.note(h.stack, "pending replacement of %s: nothing created yet, dropping it; the resource it was to replace "+
				"stays until the replacement runs again", pc.URN)
		default:
			d.note(h.stack, "pending create of %s: nothing to adopt, dropping it; up creates it again", pc.URN)
		}
	}
	settlePending(&state, found)
	raw, err := json.Marshal(state)
	if err != nil {
		return false, fmt.Errorf("writing the state of %s: %w", h.stack, err)
	}
	if err := s.Import(ctx, apitype.UntypedDeployment{Version: exported.Version, Deployment: raw}); err != nil {
		return false, fmt.Errorf("writing the state of %s: %w", h.stack, err)
	}
	if !refresh {
		return true, nil
	}
	return true, d.refreshState(ctx, h, s)
}

// refreshState reads every resource of the stack back from the cloud into its state.
func (d *Driver) refreshState(ctx context.Context, h *hold, s auto.Stack) error {
	return d.withLockRecovery(ctx, h, s, func() error {
		if _, err := s.Refresh(ctx, optrefresh.ProgressStreams(d.progress), optrefresh.ErrorProgressStreams(d.progress)); err != nil {
			return d.engineError("refreshing", h.stack, err)
		}
		return nil
	})
}

// settlePending rewrites a state's pending operations: each pending create in found becomes a
// resource with its id (its outputs are its inputs until the refresh reads the real ones),
// placed after its parent, its provider and its dependencies so the state stays valid; every
// pending operation is then dropped. A found create that replaces a resource completes the
// replacement as the engine would have: the original is marked for deletion (the next up
// deletes it), or, already deleted (delete-before-replace), leaves the state.
func settlePending(state *apitype.DeploymentV3, found map[string]string) {
	for _, op := range state.PendingOperations {
		id, ok := found[string(op.Resource.URN)]
		if op.Type != apitype.OperationTypeCreating || !ok {
			continue
		}
		state.Resources = slices.DeleteFunc(state.Resources, func(old apitype.ResourceV3) bool {
			return old.URN == op.Resource.URN && old.PendingReplacement
		})
		for i := range state.Resources {
			if state.Resources[i].URN == op.Resource.URN {
				state.Resources[i].Delete = true
			}
		}
		r := op.Resource
		r.ID = resource.ID(id)
		r.Outputs = maps.Clone(r.Inputs)
		after := -1
		needs := map[resource.URN]bool{r.Parent: true}
		for _, dep := range r.Dependencies {
			needs[dep] = true
		}
		// A provider reference is the provider's URN, "::", then its id.
		if i := strings.LastIndex(r.Provider, "::"); i > 0 {
			needs[resource.URN(r.Provider[:i])] = true
		}
		for i, existing := range state.Resources {
			if needs[existing.URN] {
				after = i
			}
		}
		state.Resources = slices.Insert(state.Resources, after+1, r)
	}
	state.PendingOperations = nil
}

// exportState reads a stack's state, to look at; nil for a stack that has none yet.
func exportState(ctx context.Context, s auto.Stack) (*apitype.DeploymentV3, error) {
	exported, err := s.Export(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the state of %s: %w", s.Name(), err)
	}
	if len(exported.Deployment) == 0 {
		return nil, nil
	}
	var state apitype.DeploymentV3
	if err := json.Unmarshal(exported.Deployment, &state); err != nil {
		return nil, fmt.Errorf("reading the state of %s: %w", s.Name(), err)
	}
	return &state, nil
}
