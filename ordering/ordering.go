// Package ordering orders a deployment's VPS from a hosting provider, once, whatever dies when:
// it finds the plan, orders it, waits for its delivery, reads its address and rebuilds it with
// the deployment's public key. Where the order stands is a State the caller keeps (the journal):
// every identifier is saved as soon as it exists, and each intent (a checkout, a rebuild) before
// the call that acts on it, so a process that dies anywhere leaves enough to continue with the
// same order and never to order or rebuild twice.
//
// A provider is one implementation of Provider (OVH is the first) and its configuration keys.
package ordering

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The ordering stages, in order (DESIGN.md, seed 000), between ssh_key_generated and ssh_ready.
const (
	StagePlanFound     = "plan_found"
	StageOrdered       = "vps_ordered"
	StageDelivered     = "vps_delivered"
	StageIPAcquired    = "vps_ip_acquired"
	StageRebuilt       = "vps_rebuilt"
	DefaultPoll        = 30 * time.Second
	DefaultRebuildWait = 30 * time.Minute
)

// Stages are the ordering stages in order.
var Stages = []string{StagePlanFound, StageOrdered, StageDelivered, StageIPAcquired, StageRebuilt}

// Provider is a hosting provider's API, as ordering uses it. Every method is one question or one
// request: the flow, its records and its resumes are Order's.
type Provider interface {
	// Name is the provider's name, as vps_provider says it.
	Name() string
	// FindPlan checks that the credentials work and that the configured plan can be ordered
	// where and as configured (datacenter in stock, image offered). It orders nothing.
	FindPlan(ctx context.Context) (Plan, error)
	// Services lists the account's VPSes, by service name.
	Services(ctx context.Context) ([]string, error)
	// NewCart makes a cart holding the configured plan, ready for checkout; nothing is ordered.
	NewCart(ctx context.Context, description string) (string, error)
	// CheckedOut reports whether a cart may have been ordered: it was checked out, or it is
	// gone. A cart that is still open was not.
	CheckedOut(ctx context.Context, cart string) (bool, error)
	// Checkout orders the cart (paid with the account's default payment method) and returns
	// the order's id.
	Checkout(ctx context.Context, cart string) (int64, error)
	// Delivery returns the order's status and, once it is delivered, the VPS's service name.
	Delivery(ctx context.Context, order int64) (Delivery, error)
	// OrdersSince lists the account's orders placed since a time that are for what this
	// deployment orders (plan, datacenter, image): how a checkout whose answer was lost finds
	// its order.
	OrdersSince(ctx context.Context, since time.Time) (Orders, error)
	// IP returns the VPS's public IPv4 address.
	IP(ctx context.Context, service string) (string, error)
	// Rebuild reinstalls the VPS with the configured image, the deployment's public key
	// authorized; it returns the task that does it.
	Rebuild(ctx context.Context, service, publicKey string) (string, error)
	// RebuildTasks lists the VPS's rebuild tasks, oldest first: how a rebuild requested by a
	// process that died before recording its task is found.
	RebuildTasks(ctx context.Context, service string) ([]string, error)
	// Task returns where a task of the VPS stands.
	Task(ctx context.Context, service, task string) (Task, error)
	// Release stops the VPS's renewal so that it is deleted at its expiry, and asks for its
	// termination as far as the API allows without a human; it says what was done and what the
	// account holder still has to confirm.
	Release(ctx context.Context, service string) (Release, error)
}

// Plan is what FindPlan found: a line for the log.
type Plan struct {
	Summary string
}

// Delivery is an order's status.
type Delivery struct {
	// Status is the provider's word for it (OVH: checking, delivering, delivered, …).
	Status    string
	Delivered bool
	// Service names the delivered VPS.
	Service string
	// Failed says the order will never be delivered (cancelled, not paid), with why.
	Failed string
}

// Orders is what OrdersSince found.
type Orders struct {
	// Of says what was looked for ("vps-2025-model1 in GRA with Debian 12").
	Of  string
	IDs []int64
}

// Task is where a provider's task stands.
type Task struct {
	State  string
	Done   bool
	Failed bool
}

// Release is what destroying an ordered VPS did.
type Release struct {
	// Done lists what the provider did; ToConfirm what the account holder still has to do.
	Done      []string `json:"done"`
	ToConfirm []string `json:"toConfirm"`
}

// State is where a deployment's order stands: the caller keeps it (JSON) and hands it back to
// the next Order, in this process or another.
type State struct {
	Provider string `json:"provider"`
	Plan     string `json:"plan,omitempty"`
	// CartID is recorded as soon as the cart exists; ServicesBefore is the account's VPS list
	// taken before its checkout.
	CartID         string   `json:"cartId,omitempty"`
	ServicesBefore []string `json:"servicesBefore,omitempty"`
	// CheckoutStarted is set before the checkout is asked for: from then on the cart may have
	// been ordered, and only the cart or a new VPS can say whether it was.
	CheckoutStarted time.Time `json:"checkoutStarted,omitzero"`
	OrderID         int64     `json:"orderId,omitempty"`
	Service         string    `json:"service,omitempty"`
	IP              string    `json:"ip,omitempty"`
	// RebuildStarted is set before the rebuild is asked for, RebuildTask as soon as it is
	// known; Rebuilt once the task is done. A rebuilt VPS is never rebuilt again.
	RebuildStarted time.Time `json:"rebuildStarted,omitzero"`
	RebuildTask    string    `json:"rebuildTask,omitempty"`
	Rebuilt        bool      `json:"rebuilt,omitempty"`
}

// Ready reports whether the VPS is delivered, addressed and rebuilt.
func (s State) Ready() bool { return s.Rebuilt && s.IP != "" }

// Order runs the ordering stages from where st stands. Save must record st durably before it
// returns: Order calls it before each request that acts and after each answer it must not lose.
type Order struct {
	Provider Provider
	// PublicKey is the deployment's public key (authorized_keys form), installed by the
	// rebuild.
	PublicKey string
	// Description names the deployment in the provider's cart.
	Description string
	Save        func(State) error
	// Stage reports a completed stage; Ordering reports the order placed (true) and delivered
	// (false); Note reports progress. Each may be nil.
	Stage    func(string)
	Ordering func(bool) error
	Note     func(string)
	// Poll is the interval of the delivery, task and VPS list polls (DefaultPoll when zero).
	Poll time.Duration
	// DeliveryTimeout bounds one wait for the delivery; RebuildTimeout one wait for the
	// rebuild (DefaultRebuildWait when zero).
	DeliveryTimeout, RebuildTimeout time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// DeliveryTimeoutError is a delivery that did not come within its budget: the order stands,
// and the next up (up --retry) goes on waiting for the same one.
type DeliveryTimeoutError struct {
	Provider string
	Order    int64
	Status   string
	Budget   time.Duration
}

func (e *DeliveryTimeoutError) Error() string {
	return fmt.Sprintf("%s order %d was not delivered within %s (ovh_delivery_timeout); its status is %q. "+
		"The order stands: `up --retry` goes on waiting for the same order, never orders again", e.Provider, e.Order, e.Budget, e.Status)
}

// UndecidableError is a checkout that may or may not have placed an order whose id was never
// recorded: nothing is ordered again until someone checks.
type UndecidableError struct {
	Provider string
	Cart     string
	At       time.Time
	Why      string
}

func (e *UndecidableError) Error() string {
	return fmt.Sprintf("the checkout of %s cart %s at %s may have placed an order whose id was not recorded, and %s. "+
		"clawdeploy will not order again for this deployment: check the account's orders from that time in the provider's "+
		"manager; if one was placed, cancel it there or wait for its VPS to appear and run up again; if none was, "+
		"destroy this deployment and deploy it again", e.Provider, e.Cart, e.At.UTC().Format(time.RFC3339), e.Why)
}

func (o *Order) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

func (o *Order) stage(s string) {
	if o.Stage != nil {
		o.Stage(s)
	}
}

func (o *Order) note(format string, args ...any) {
	if o.Note != nil {
		o.Note(fmt.Sprintf(format, args...))
	}
}

func (o *Order) ordering(placed bool) error {
	if o.Ordering != nil {
		return o.Ordering(placed)
	}
	return nil
}

func (o *Order) poll() time.Duration {
	if o.Poll > 0 {
		return o.Poll
	}
	return DefaultPoll
}

// Run takes st to a delivered, addressed and rebuilt VPS, saving it at every step. Stages
// already done are reported again only when Run does them.
func (o *Order) Run(ctx context.Context, st *State) error {
	st.Provider = o.Provider.Name()
	save := func() error { return o.Save(*st) }
	if st.Plan == "" {
		plan, err := o.Provider.FindPlan(ctx)
		if err != nil {
			return err
		}
		st.Plan = plan.Summary
		if err := save(); err != nil {
			return err
		}
		o.note("plan found: %s", plan.Summary)
		o.stage(StagePlanFound)
	}
	if st.OrderID == 0 && st.Service == "" {
		if err := o.order(ctx, st, save); err != nil {
			return err
		}
	}
	if st.Service == "" {
		if err := o.awaitDelivery(ctx, st, save); err != nil {
			return err
		}
	}
	if st.IP == "" {
		ip, err := o.Provider.IP(ctx, st.Service)
		if err != nil {
			return err
		}
		st.IP = ip
		if err := save(); err != nil {
			return err
		}
		o.stage(StageIPAcquired)
	}
	if !st.Rebuilt {
		if err := o.rebuild(ctx, st, save); err != nil {
			return err
		}
	}
	return nil
}

// order places the order, or finds the one a dead process placed.
func (o *Order) order(ctx context.Context, st *State, save func() error) error {
	if !st.CheckoutStarted.IsZero() {
		// A process died between asking for the checkout and recording its answer: the cart
		// says whether it was checked out.
		checked, err := o.Provider.CheckedOut(ctx, st.CartID)
		if err != nil {
			return err
		}
		if checked {
			return o.findOrdered(ctx, st, save)
		}
		o.note("cart %s was not checked out by the process that died: checking it out now", st.CartID)
	}
	if st.CartID == "" {
		before, err := o.Provider.Services(ctx)
		if err != nil {
			return err
		}
		cart, err := o.Provider.NewCart(ctx, o.Description)
		if err != nil {
			return err
		}
		st.CartID, st.ServicesBefore = cart, before
		if err := save(); err != nil {
			return err
		}
	}
	if err := o.ordering(true); err != nil {
		return err
	}
	st.CheckoutStarted = o.now()
	if err := save(); err != nil {
		return err
	}
	order, err := o.Provider.Checkout(ctx, st.CartID)
	if err != nil {
		return err
	}
	st.OrderID = order
	if err := save(); err != nil {
		return err
	}
	o.note("ordered: %s order %d (cart %s)", o.Provider.Name(), order, st.CartID)
	o.stage(StageOrdered)
	return nil
}

// orderClockSlack widens the window in which a lost checkout's order is looked for: the
// provider dates its orders by its own clock, which may be behind ours.
const orderClockSlack = 5 * time.Minute

// findOrdered settles a checkout whose order id was lost: the account's one order for what this
// deployment orders placed since the checkout is its order, whose delivery is then awaited as
// any order's. Several such orders (another deployment of the account ordering the same at the
// same time), or none within the delivery budget, cannot be decided: a VPS that cannot be tied
// to the deployment's own order is never taken, so no other order loses its VPS to it.
func (o *Order) findOrdered(ctx context.Context, st *State, save func() error) error {
	since := st.CheckoutStarted.Add(-orderClockSlack)
	o.note("cart %s was checked out but its order id was not recorded: looking for its order among the account's orders since %s",
		st.CartID, since.UTC().Format(time.RFC3339))
	deadline := o.now().Add(o.DeliveryTimeout)
	for {
		found, err := o.Provider.OrdersSince(ctx, since)
		if err != nil {
			return err
		}
		switch {
		case len(found.IDs) == 1:
			st.OrderID = found.IDs[0]
			if err := save(); err != nil {
				return err
			}
			o.note("the checked-out cart's order is %s order %d, the account's one order of %s since then", o.Provider.Name(), st.OrderID, found.Of)
			o.stage(StageOrdered)
			return nil
		case len(found.IDs) > 1:
			ids := make([]string, len(found.IDs))
			for i, id := range found.IDs {
				ids[i] = strconv.FormatInt(id, 10)
			}
			return &UndecidableError{Provider: o.Provider.Name(), Cart: st.CartID, At: st.CheckoutStarted,
				Why: fmt.Sprintf("%d orders of %s were placed since then (%s): which one is this deployment's cannot be told",
					len(found.IDs), found.Of, strings.Join(ids, ", "))}
		case !o.now().Before(deadline):
			return &UndecidableError{Provider: o.Provider.Name(), Cart: st.CartID, At: st.CheckoutStarted,
				Why: fmt.Sprintf("no order of %s placed since then was found within %s", found.Of, o.DeliveryTimeout)}
		}
		if err := sleep(ctx, o.poll()); err != nil {
			return err
		}
	}
}

// awaitDelivery polls the order until its VPS is delivered, within the delivery budget.
func (o *Order) awaitDelivery(ctx context.Context, st *State, save func() error) error {
	deadline := o.now().Add(o.DeliveryTimeout)
	last := ""
	for {
		d, err := o.Provider.Delivery(ctx, st.OrderID)
		if err != nil {
			return err
		}
		if d.Failed != "" {
			return fmt.Errorf("%s order %d will not be delivered: %s", o.Provider.Name(), st.OrderID, d.Failed)
		}
		if d.Delivered && d.Service != "" {
			if slices.Contains(st.ServicesBefore, d.Service) {
				return fmt.Errorf("%s order %d names VPS %s as its delivery, but the account had it before the checkout: "+
					"clawdeploy will not take it; check the order in the provider's manager", o.Provider.Name(), st.OrderID, d.Service)
			}
			st.Service = d.Service
			if err := save(); err != nil {
				return err
			}
			if err := o.ordering(false); err != nil {
				return err
			}
			o.note("delivered: %s", d.Service)
			o.stage(StageDelivered)
			return nil
		}
		if d.Status != last {
			o.note("%s order %d: %s", o.Provider.Name(), st.OrderID, d.Status)
			last = d.Status
		}
		if !o.now().Before(deadline) {
			return &DeliveryTimeoutError{Provider: o.Provider.Name(), Order: st.OrderID, Status: d.Status, Budget: o.DeliveryTimeout}
		}
		if err := sleep(ctx, o.poll()); err != nil {
			return err
		}
	}
}

// rebuild asks for the rebuild once and waits for its task.
func (o *Order) rebuild(ctx context.Context, st *State, save func() error) error {
	if st.RebuildTask == "" && !st.RebuildStarted.IsZero() {
		// A process died between asking for the rebuild and recording its task: a rebuild task
		// on the VPS is that one.
		tasks, err := o.Provider.RebuildTasks(ctx, st.Service)
		if err != nil {
			return err
		}
		if len(tasks) > 0 {
			st.RebuildTask = tasks[len(tasks)-1]
			if err := save(); err != nil {
				return err
			}
			o.note("found rebuild task %s of %s, requested by the process that died", st.RebuildTask, st.Service)
		}
	}
	if st.RebuildTask == "" {
		st.RebuildStarted = o.now()
		if err := save(); err != nil {
			return err
		}
		task, err := o.Provider.Rebuild(ctx, st.Service, o.PublicKey)
		if err != nil {
			return err
		}
		st.RebuildTask = task
		if err := save(); err != nil {
			return err
		}
		o.note("rebuilding %s with the deployment's key: task %s", st.Service, task)
	}
	budget := o.RebuildTimeout
	if budget == 0 {
		budget = DefaultRebuildWait
	}
	deadline := o.now().Add(budget)
	for {
		t, err := o.Provider.Task(ctx, st.Service, st.RebuildTask)
		if err != nil {
			return err
		}
		switch {
		case t.Done:
			st.Rebuilt = true
			if err := save(); err != nil {
				return err
			}
			o.stage(StageRebuilt)
			return nil
		case t.Failed:
			return fmt.Errorf("the rebuild of %s (task %s) ended %q: it is not asked for again; check the VPS in the provider's "+
				"manager, then destroy this deployment or ask the provider's support", st.Service, st.RebuildTask, t.State)
		case !o.now().Before(deadline):
			return fmt.Errorf("the rebuild of %s (task %s) is still %q after %s: up again goes on waiting for the same task",
				st.Service, st.RebuildTask, t.State, budget)
		}
		if err := sleep(ctx, o.poll()); err != nil {
			return err
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
