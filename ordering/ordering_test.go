package ordering_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clawdeploy/clawdeploy/internal/ovhfake"
	"github.com/clawdeploy/clawdeploy/ordering"
)

const publicKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTheFakeOnly deployment"

// account is a fake OVH account (ovhfake) and a provider signed in to it.
type account struct {
	fake *ovhfake.Server
	cfg  ordering.OVHConfig
	mu   sync.Mutex
	keys map[string]string // service → key its rebuild installed
}

func newAccount(t *testing.T, delivery time.Duration, existing ...string) *account {
	t.Helper()
	a := &account{keys: map[string]string{}}
	a.fake = ovhfake.Start(t, ovhfake.Options{
		ApplicationKey: "ak-test", ApplicationSecret: "as-test", ConsumerKey: "ck-test",
		Plans:  map[string]map[string]string{"vps-2025-model1": {"GRA": "available", "BHS": "out-of-stock"}},
		Images: []string{"Debian 12", "Ubuntu 24.04"}, DeliveryDelay: delivery, RebuildDelay: 200 * time.Millisecond,
		IP: "127.0.0.1", Existing: existing,
		Rebuilt: func(service, key string) { a.mu.Lock(); a.keys[service] = key; a.mu.Unlock() },
	})
	a.cfg = ordering.OVHConfig{Endpoint: a.fake.URL, ApplicationKey: "ak-test", ApplicationSecret: "as-test", ConsumerKey: "ck-test",
		Subsidiary: "FR", PlanCode: "vps-2025-model1", Datacenter: "GRA", OS: "Debian 12", Duration: "P1M"}
	return a
}

// run is one process's Order.Run: it saves into saved, as the journal would.
type run struct {
	saved  []ordering.State
	stages []string
	status []bool
}

func (a *account) order(t *testing.T, cfg ordering.OVHConfig, r *run, delivery time.Duration) *ordering.Order {
	t.Helper()
	p, err := ordering.NewOVH(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &ordering.Order{
		Provider: p, PublicKey: publicKey, Description: "clawdeploy test",
		Save:     func(s ordering.State) error { r.saved = append(r.saved, s); return nil },
		Stage:    func(s string) { r.stages = append(r.stages, s) },
		Ordering: func(placed bool) error { r.status = append(r.status, placed); return nil },
		Poll:     50 * time.Millisecond, DeliveryTimeout: delivery, RebuildTimeout: 10 * time.Second,
	}
}

// TestOrderOnce orders a VPS through the fake OVH API: the stages in order, the cart recorded
// before the checkout, the order id as soon as the checkout answers, one order and one rebuild
// with the deployment's key; a second run with the state does nothing.
func TestOrderOnce(t *testing.T) {
	t.Parallel()
	a := newAccount(t, 300*time.Millisecond, "vps-old.vps.ovh.net")
	r := &run{}
	var st ordering.State
	if err := a.order(t, a.cfg, r, 10*time.Second).Run(context.Background(), &st); err != nil {
		t.Fatal(err)
	}
	if !st.Ready() || st.IP != "127.0.0.1" || st.OrderID == 0 || !strings.HasPrefix(st.Service, "vps-") {
		t.Fatalf("state: %+v", st)
	}
	if !slices.Equal(r.stages, ordering.Stages) {
		t.Errorf("stages %v, want %v", r.stages, ordering.Stages)
	}
	if !slices.Equal(r.status, []bool{true, false}) {
		t.Errorf("ORDERING reported %v, want placed then delivered", r.status)
	}
	cartFirst := slices.IndexFunc(r.saved, func(s ordering.State) bool { return s.CartID != "" })
	checkout := slices.IndexFunc(r.saved, func(s ordering.State) bool { return !s.CheckoutStarted.IsZero() })
	ordered := slices.IndexFunc(r.saved, func(s ordering.State) bool { return s.OrderID != 0 })
	if cartFirst < 0 || cartFirst >= checkout || checkout >= ordered || !slices.Equal(r.saved[cartFirst].ServicesBefore, []string{"vps-old.vps.ovh.net"}) {
		t.Errorf("saved in the wrong order: cart at %d, checkout at %d, order at %d: %+v", cartFirst, checkout, ordered, r.saved)
	}
	if a.fake.Orders() != 1 || a.fake.Rebuilds() != 1 || a.keys[st.Service] != publicKey {
		t.Errorf("%d orders, %d rebuilds, key installed %q", a.fake.Orders(), a.fake.Rebuilds(), a.keys[st.Service])
	}
	again := &run{}
	calls := len(a.fake.Calls())
	if err := a.order(t, a.cfg, again, time.Second).Run(context.Background(), &st); err != nil || len(again.stages) > 0 {
		t.Errorf("a second run: %v, stages %v", err, again.stages)
	}
	if n := len(a.fake.Calls()) - calls; n != 0 {
		t.Errorf("a second run made %d calls", n)
	}
}

// killedWhile runs an order until the fake holds route's answer (the call took effect), then
// cancels it as a killed process stops: its last saved state is what the journal kept.
func (a *account) killedWhile(t *testing.T, route string) ordering.State {
	t.Helper()
	held := a.fake.Hold(route)
	r := &run{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var st ordering.State
	go func() { done <- a.order(t, a.cfg, r, 10*time.Second).Run(ctx, &st) }()
	select {
	case <-held:
	case err := <-done:
		t.Fatalf("the run ended before %s: %v", route, err)
	case <-time.After(30 * time.Second):
		t.Fatalf("%s never called", route)
	}
	cancel()
	<-done
	return r.saved[len(r.saved)-1]
}

// TestOrderResumesInEachWindow kills the order where a process could lose an answer: after the
// checkout placed the order, before its id was recorded; after the rebuild was asked for,
// before its task was recorded. The next run continues with one order and one rebuild.
func TestOrderResumesInEachWindow(t *testing.T) {
	t.Parallel()
	for _, route := range []string{"POST /order/cart/{}/checkout", "POST /vps/{}/rebuild"} {
		t.Run(strings.Fields(route)[1], func(t *testing.T) {
			t.Parallel()
			a := newAccount(t, 300*time.Millisecond)
			st := a.killedWhile(t, route)
			if strings.Contains(route, "checkout") && (st.OrderID != 0 || st.CheckoutStarted.IsZero()) {
				t.Fatalf("the state kept %+v", st)
			}
			if strings.Contains(route, "rebuild") && (st.RebuildTask != "" || st.RebuildStarted.IsZero()) {
				t.Fatalf("the state kept %+v", st)
			}
			r := &run{}
			if err := a.order(t, a.cfg, r, 10*time.Second).Run(context.Background(), &st); err != nil {
				t.Fatal(err)
			}
			if !st.Ready() || a.fake.Orders() != 1 || a.fake.Rebuilds() != 1 {
				t.Errorf("after the resume: %+v, %d orders, %d rebuilds", st, a.fake.Orders(), a.fake.Rebuilds())
			}
		})
	}
}

// TestOrderCheckoutNeverAskedIsAskedOnce: a process that died after recording the checkout's
// intent but before the checkout reached OVH leaves an open cart, which the next run checks out.
func TestOrderCheckoutNeverAskedIsAskedOnce(t *testing.T) {
	t.Parallel()
	a := newAccount(t, 100*time.Millisecond)
	a.fake.Fail("POST /order/cart/{}/checkout", http.StatusServiceUnavailable)
	r := &run{}
	var st ordering.State
	if err := a.order(t, a.cfg, r, 10*time.Second).Run(context.Background(), &st); err == nil {
		t.Fatal("the failed checkout was not reported")
	}
	if st.CheckoutStarted.IsZero() || st.OrderID != 0 || a.fake.Orders() != 0 {
		t.Fatalf("after the failed checkout: %+v, %d orders", st, a.fake.Orders())
	}
	if err := a.order(t, a.cfg, &run{}, 10*time.Second).Run(context.Background(), &st); err != nil {
		t.Fatal(err)
	}
	if !st.Ready() || a.fake.Orders() != 1 {
		t.Errorf("%+v, %d orders", st, a.fake.Orders())
	}
	carts := 0
	for _, c := range a.fake.Calls() {
		if c == "POST /order/cart" {
			carts++
		}
	}
	if carts != 1 {
		t.Errorf("%d carts made, want the one recorded", carts)
	}
}

// TestLostOrderIsTiedToItsOwnOrder: the process died after the checkout placed the order and
// before its id was recorded; meanwhile another order of the account (the same plan in another
// datacenter) is delivered first. The next run finds its own order among the account's orders
// (plan, datacenter and image, placed since the checkout), waits for it, and takes its VPS,
// never the other's.
func TestLostOrderIsTiedToItsOwnOrder(t *testing.T) {
	t.Parallel()
	a := newAccount(t, 1500*time.Millisecond)
	st := a.killedWhile(t, "POST /order/cart/{}/checkout")
	others := []int64{a.fake.PlaceOrder("vps-2025-model1", "BHS", 0)}
	before := a.fake.Services()
	if len(before) != 1 {
		t.Fatalf("the other orders were not delivered first: %v", before)
	}
	if err := a.order(t, a.cfg, &run{}, 10*time.Second).Run(context.Background(), &st); err != nil {
		t.Fatal(err)
	}
	ours := a.fake.Checkouts()
	if len(ours) != 1 || st.OrderID != ours[0] || slices.Contains(others, st.OrderID) || slices.Contains(before, st.Service) || !st.Ready() {
		t.Errorf("resumed to order %d, VPS %s (the checkout's order: %v; the others' VPSes: %v)", st.OrderID, st.Service, ours, before)
	}
	if a.fake.Orders() != 1 {
		t.Errorf("%d checkouts, want the one", a.fake.Orders())
	}
}

// TestOrderUndecidable: the order id was lost, and the account's orders cannot say which one is
// the deployment's: another of the same plan, datacenter and image was placed since the
// checkout, or none is found (the provider's clock far from ours). Nothing is ordered again, no
// VPS is taken, and the error says what to check.
func TestOrderUndecidable(t *testing.T) {
	t.Parallel()
	var undecidable *ordering.UndecidableError
	two := newAccount(t, 0)
	st := two.killedWhile(t, "POST /order/cart/{}/checkout")
	other := two.fake.PlaceOrder("vps-2025-model1", "GRA", 0)
	err := two.order(t, two.cfg, &run{}, 5*time.Second).Run(context.Background(), &st)
	if !errors.As(err, &undecidable) || !strings.Contains(err.Error(), fmt.Sprintf("2 orders of vps-2025-model1 in GRA with Debian 12 were placed since then (%d, %d)", two.fake.Checkouts()[0], other)) ||
		!strings.Contains(err.Error(), "will not order again") || two.fake.Orders() != 1 || st.Service != "" || st.OrderID != 0 {
		t.Errorf("two orders: %v, %d orders, %+v", err, two.fake.Orders(), st)
	}

	none := newAccount(t, 0)
	st = none.killedWhile(t, "POST /order/cart/{}/checkout")
	st.CheckoutStarted = st.CheckoutStarted.Add(time.Hour) // our clock an hour ahead of the provider's
	err = none.order(t, none.cfg, &run{}, 300*time.Millisecond).Run(context.Background(), &st)
	if !errors.As(err, &undecidable) || !strings.Contains(err.Error(), "no order of vps-2025-model1 in GRA with Debian 12 placed since then was found within 300ms") ||
		none.fake.Orders() != 1 || st.Service != "" {
		t.Errorf("no order found: %v, %d orders", err, none.fake.Orders())
	}
}

// TestDeliveryTimeoutThenRetry: a delivery past its budget is an error that keeps the order; the
// next run waits for the same order.
func TestDeliveryTimeoutThenRetry(t *testing.T) {
	t.Parallel()
	a := newAccount(t, 1500*time.Millisecond)
	var st ordering.State
	err := a.order(t, a.cfg, &run{}, 300*time.Millisecond).Run(context.Background(), &st)
	var late *ordering.DeliveryTimeoutError
	if !errors.As(err, &late) || late.Order != st.OrderID || !strings.Contains(err.Error(), "ovh_delivery_timeout") {
		t.Fatalf("want a delivery timeout, got %v", err)
	}
	if err := a.order(t, a.cfg, &run{}, 10*time.Second).Run(context.Background(), &st); err != nil {
		t.Fatal(err)
	}
	if !st.Ready() || a.fake.Orders() != 1 {
		t.Errorf("%+v, %d orders", st, a.fake.Orders())
	}
}

// TestOrderRefusals: wrong credentials, an unknown plan, a datacenter out of stock and an image
// not offered are errors naming what was asked, before anything is ordered.
func TestOrderRefusals(t *testing.T) {
	t.Parallel()
	a := newAccount(t, 0)
	for _, c := range []struct {
		name   string
		change func(*ordering.OVHConfig)
		want   string
	}{
		{"credentials", func(c *ordering.OVHConfig) { c.ConsumerKey = "ck-wrong" }, "OVH refused the credentials"},
		{"secret", func(c *ordering.OVHConfig) { c.ApplicationSecret = "as-wrong" }, "Invalid signature"},
		{"plan", func(c *ordering.OVHConfig) { c.PlanCode = "vps-nope" }, `ovh_plan_code "vps-nope" is not a VPS plan OVHcloud offers to subsidiary FR; it offers vps-2025-model1`},
		{"stock", func(c *ordering.OVHConfig) { c.Datacenter = "BHS" }, `ovh_datacenter "BHS" is out-of-stock for plan vps-2025-model1; in stock: GRA`},
		{"datacenter", func(c *ordering.OVHConfig) { c.Datacenter = "SYD" }, `ovh_datacenter "SYD" does not offer plan vps-2025-model1; in stock: GRA`},
		{"os", func(c *ordering.OVHConfig) { c.OS = "Windows 95" }, `ovh_os "Windows 95"`},
	} {
		cfg := a.cfg
		c.change(&cfg)
		var st ordering.State
		err := a.order(t, cfg, &run{}, time.Second).Run(context.Background(), &st)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	if a.fake.Orders() != 0 {
		t.Errorf("%d orders placed by refused configurations", a.fake.Orders())
	}
}

// TestRelease turns the renewal off with deletion at expiry and asks for the termination, and
// says what the account holder still has to confirm.
func TestRelease(t *testing.T) {
	t.Parallel()
	a := newAccount(t, 0, "vps-1.vps.ovh.net")
	p, err := ordering.NewOVH(a.cfg)
	if err != nil {
		t.Fatal(err)
	}
	r, err := p.Release(context.Background(), "vps-1.vps.ovh.net")
	if err != nil {
		t.Fatal(err)
	}
	renew, terminate, _ := a.fake.Service("vps-1.vps.ovh.net")
	if renew["automatic"] != false || renew["deleteAtExpiration"] != true || !terminate {
		t.Errorf("renew %v, terminate %v", renew, terminate)
	}
	if len(r.Done) != 2 || len(r.ToConfirm) != 1 || !strings.Contains(r.ToConfirm[0], "emailed the account holder") {
		t.Errorf("release said %+v", r)
	}
}
