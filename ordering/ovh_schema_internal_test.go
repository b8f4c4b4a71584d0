package ordering

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clawdeploy/clawdeploy/internal/ovhfake"
)

// TestOVHReadsOnlyWhatTheDescriptionHas orders, rebuilds and releases a VPS through the fake,
// with a checkout whose answer is lost on the way, and checks every answer the product read
// against OVHcloud's description (the fake's vendored schema): each field the product reads
// exists in the model the description gives that operation's answer, as a type the field can
// hold. (The fake checks the calls themselves, and its own answers, on every call it serves.)
func TestOVHReadsOnlyWhatTheDescriptionHas(t *testing.T) {
	t.Parallel()
	fake := ovhfake.Start(t, ovhfake.Options{
		ApplicationKey: "ak", ApplicationSecret: "as", ConsumerKey: "ck",
		Plans:  map[string]map[string]string{"vps-2025-model1": {"GRA": "available"}},
		Images: []string{"Debian 12"}, DeliveryDelay: 200 * time.Millisecond, RebuildDelay: 50 * time.Millisecond, IP: "127.0.0.1",
	})
	p, err := NewOVH(OVHConfig{Endpoint: fake.URL, ApplicationKey: "ak", ApplicationSecret: "as", ConsumerKey: "ck",
		Subsidiary: "FR", PlanCode: "vps-2025-model1", Datacenter: "GRA", OS: "Debian 12", Duration: "P1M"})
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		reads = map[string]reflect.Type{} // "METHOD /path template" → what its answer was read into
	)
	schema, err := ovhfake.LoadSchema()
	if err != nil {
		t.Fatal(err)
	}
	p.decoded = func(method, path string, out any) {
		op, ok := schema.Operation(method, path)
		if !ok {
			t.Errorf("%s %s: not in OVHcloud's description", method, path)
			return
		}
		mu.Lock()
		reads[method+" "+op.Path] = reflect.TypeOf(out).Elem()
		mu.Unlock()
	}
	order := &Order{Provider: p, PublicKey: "ssh-ed25519 AAAA test", Description: "schema test", Save: func(State) error { return nil },
		Poll: 20 * time.Millisecond, DeliveryTimeout: 10 * time.Second, RebuildTimeout: 10 * time.Second}
	var st State
	held := fake.Hold("POST /order/cart/{}/checkout")
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- order.Run(ctx, &st) }()
	<-held
	cancel()
	<-done
	if err := order.Run(t.Context(), &st); err != nil || !st.Ready() {
		t.Fatalf("the order did not complete: %+v %v", st, err)
	}
	if _, err := p.Delivery(t.Context(), st.OrderID); err != nil {
		t.Fatal(err)
	}
	if _, err := p.RebuildTasks(t.Context(), st.Service); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Release(t.Context(), st.Service); err != nil {
		t.Fatal(err)
	}
	cart, err := p.NewCart(t.Context(), "a checkout answered") // the one above was lost
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Checkout(t.Context(), cart); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"GET /me", "POST /order/cart", "POST /order/cart/{cartId}/vps", "GET /order/catalog/public/vps",
		"GET /vps/order/rule/datacenter", "GET /vps/{serviceName}/images/available/{id}", "POST /vps/{serviceName}/rebuild", "GET /me/order", "GET /me/order/{orderId}/details/{orderDetailId}/extension",
		"GET /me/order/{orderId}/details/{orderDetailId}", "GET /me/order/{orderId}/status", "GET /order/cart/{cartId}",
		"POST /order/cart/{cartId}/checkout", "GET /vps/{serviceName}/tasks", "GET /vps/{serviceName}/serviceInfos"} {
		if _, ok := reads[want]; !ok {
			t.Errorf("the run never read %s: the test no longer covers it", want)
		}
	}
	for _, call := range slices.Sorted(func(yield func(string) bool) {
		for k := range reads {
			if !yield(k) {
				return
			}
		}
	}) {
		method, path, _ := strings.Cut(call, " ")
		op, _ := schema.Operation(method, path)
		for _, problem := range readable(schema, op.Response, reads[call], call) {
			t.Error(problem)
		}
	}
}

// readable returns how a Go value of type goType, decoded from an answer of the description's
// type typ, reads something the description does not have.
func readable(schema *ovhfake.Schema, typ string, goType reflect.Type, at string) []string {
	for goType.Kind() == reflect.Pointer {
		goType = goType.Elem()
	}
	if elem, ok := strings.CutSuffix(typ, "[]"); ok {
		if goType.Kind() != reflect.Slice {
			return []string{fmt.Sprintf("%s: read into %s, where the description has the list %s", at, goType, typ)}
		}
		return readable(schema, elem, goType.Elem(), at+"[]")
	}
	switch typ {
	case "long", "int", "double":
		if k := goType.Kind(); k < reflect.Int || k > reflect.Float64 {
			return []string{fmt.Sprintf("%s: read into %s, where the description has %s", at, goType, typ)}
		}
		return nil
	case "boolean":
		if goType.Kind() != reflect.Bool {
			return []string{fmt.Sprintf("%s: read into %s, where the description has %s", at, goType, typ)}
		}
		return nil
	}
	model, ok := schema.Model(typ)
	if !ok || model.Enum != nil {
		if goType.Kind() != reflect.String {
			return []string{fmt.Sprintf("%s: read into %s, where the description has %s", at, goType, typ)}
		}
		return nil
	}
	if goType.Kind() != reflect.Struct {
		return []string{fmt.Sprintf("%s: read into %s, where the description has the object %s", at, goType, typ)}
	}
	var problems []string
	for f := range goType.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			problems = append(problems, fmt.Sprintf("%s.%s: read without a json name", at, f.Name))
			continue
		}
		prop, ok := model.Properties[name]
		if !ok {
			problems = append(problems, fmt.Sprintf("%s: reads %q, which %s does not have", at, name, typ))
			continue
		}
		problems = append(problems, readable(schema, prop.Type, f.Type, at+"."+name)...)
	}
	return problems
}
