package ovhfake_test

import (
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ovh/go-ovh/ovh"

	"github.com/clawdeploy/clawdeploy/internal/ovhfake"
)

// TestSchemaCatchesWhatTheDescriptionLacks: the checker the fake runs on every call finds an
// operation, a query parameter, a body field, a response field and an enum value that OVHcloud's
// description does not have, and passes the ones it has.
func TestSchemaCatchesWhatTheDescriptionLacks(t *testing.T) {
	t.Parallel()
	s, err := ovhfake.LoadSchema()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		problems []string
		want     string
	}{
		{"unknown operation", s.CheckRequest("DELETE", "/me/order/12", nil, nil), "DELETE /me/order/12: no such operation"},
		{"unknown query parameter", s.CheckRequest("GET", "/vps/vps-1.ovh.net/tasks", []string{"kind"}, nil), `query parameter "kind"`},
		{"unknown body field", s.CheckRequest("POST", "/vps/vps-1.ovh.net/rebuild", nil, []byte(`{"imageId":"x","sshPublicKey":"k"}`)), `field "sshPublicKey" is not in vps.rebuild.post`},
		{"unknown response field", s.CheckResponse("GET", "/me/order/12/details/3", map[string]any{"domain": "vps-1.ovh.net", "serviceName": "vps-1"}), `field "serviceName" is not in billing.OrderDetail`},
		{"enum value", s.CheckResponse("GET", "/me/order/12/status", "paid"), "paid is not one of billing.order.OrderStatusEnum's values"},
		{"task type", s.CheckResponse("GET", "/vps/vps-1.ovh.net/tasks/7", map[string]any{"id": 7, "type": "rebuildVm", "state": "done"}), "rebuildVm is not one of vps.TaskTypeEnum's values"},
		{"list for an object", s.CheckResponse("GET", "/order/cart/c-1", []any{}), "a list where the description has the object order.cart.Cart"},
	} {
		if !slices.ContainsFunc(tc.problems, func(p string) bool { return strings.Contains(p, tc.want) }) {
			t.Errorf("%s: %q, want one with %q", tc.name, tc.problems, tc.want)
		}
	}
	for name, problems := range map[string][]string{
		"a task":      s.CheckResponse("GET", "/vps/vps-1.ovh.net/tasks/7", map[string]any{"id": 7.0, "type": "reinstallVm", "state": "doing", "progress": 50.0, "date": "2026-12-07T10:00:00Z"}),
		"an order":    s.CheckRequest("GET", "/me/order", []string{"date.from", "date.to"}, nil),
		"a rebuild":   s.CheckRequest("POST", "/vps/vps-1.ovh.net/rebuild", nil, []byte(`{"imageId":"x","publicSshKey":"k","doNotSendPassword":true}`)),
		"the catalog": s.CheckRequest("GET", "/order/catalog/public/vps", []string{"ovhSubsidiary"}, nil),
	} {
		if len(problems) > 0 {
			t.Errorf("%s: %q, want none", name, problems)
		}
	}
}

// TestAnOrdersAssociatedObjectIsItsBill pins the reading the product's delivery rests on: the
// description types an order's associated object as a billing object, never the VPS it
// delivers, so the VPS is named by the order's plan detail. If a refreshed description adds a
// service type, this fails and the delivery's lookup is to be read again.
func TestAnOrdersAssociatedObjectIsItsBill(t *testing.T) {
	t.Parallel()
	s, err := ovhfake.LoadSchema()
	if err != nil {
		t.Fatal(err)
	}
	op, ok := s.Operation("GET", "/me/order/12/associatedObject")
	if !ok || op.Response != "billing.order.AssociatedObject" {
		t.Fatalf("associatedObject: %+v %v", op, ok)
	}
	kinds, _ := s.Model("billing.order.associatedObject.TypeEnum")
	if !slices.Equal(kinds.Enum, []string{"Bill", "Deposit", "Refund", "ReverseBill", "Withdrawal"}) {
		t.Errorf("the associated object's types are now %v: read the delivery's lookup again", kinds.Enum)
	}
	detail, _ := s.Model("billing.OrderDetail")
	if _, ok := detail.Properties["domain"]; !ok {
		t.Error("billing.OrderDetail has no domain: the delivery's lookup no longer holds")
	}
}

// TestAnOrderIsPaidCheckedDeliveredAndBilled: through go-ovh, a cart checked out before it is
// assigned is refused (403); an order then goes notPaid, checking, delivering, delivered, and
// its associated object is its bill once paid.
func TestAnOrderIsPaidCheckedDeliveredAndBilled(t *testing.T) {
	t.Parallel()
	fake := ovhfake.Start(t, ovhfake.Options{ApplicationKey: "ak", ApplicationSecret: "as", ConsumerKey: "ck",
		Plans: map[string]map[string]string{"vps-2025-model1": {"GRA": "available"}}, Images: []string{"Debian 12"},
		DeliveryDelay: 8 * time.Second}) // 2 s a status: a busy machine's polls still see each
	c, err := ovh.NewClient(fake.URL, "ak", "as", "ck")
	if err != nil {
		t.Fatal(err)
	}
	var cart struct {
		CartID string `json:"cartId"`
	}
	if err := c.Post("/order/cart", map[string]string{"ovhSubsidiary": "FR"}, &cart); err != nil {
		t.Fatal(err)
	}
	var item struct {
		ItemID int64 `json:"itemId"`
	}
	if err := c.Post("/order/cart/"+cart.CartID+"/vps", map[string]any{"planCode": "vps-2025-model1", "duration": "P1M", "pricingMode": "default", "quantity": 1}, &item); err != nil {
		t.Fatal(err)
	}
	for label, value := range map[string]string{"vps_datacenter": "GRA", "vps_os": "Debian 12"} {
		if err := c.Post("/order/cart/"+cart.CartID+"/item/"+strconv.FormatInt(item.ItemID, 10)+"/configuration", map[string]string{"label": label, "value": value}, nil); err != nil {
			t.Fatal(err)
		}
	}
	checkout := map[string]bool{"autoPayWithPreferredPaymentMethod": true, "waiveRetractationPeriod": false}
	var refused *ovh.APIError
	if err := c.Post("/order/cart/"+cart.CartID+"/checkout", checkout, nil); !errors.As(err, &refused) || refused.Code != http.StatusForbidden {
		t.Fatalf("checkout of a cart never assigned: %v, want 403", err)
	}
	if err := c.Post("/order/cart/"+cart.CartID+"/assign", nil, nil); err != nil {
		t.Fatal(err)
	}
	var order struct {
		OrderID int64 `json:"orderId"`
	}
	if err := c.Post("/order/cart/"+cart.CartID+"/checkout", checkout, &order); err != nil {
		t.Fatal(err)
	}
	var seen []string
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		var status string
		if err := c.Get("/me/order/"+strconv.FormatInt(order.OrderID, 10)+"/status", &status); err != nil {
			t.Fatal(err)
		}
		if len(seen) == 0 || seen[len(seen)-1] != status {
			seen = append(seen, status)
		}
		if status == "delivered" {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !slices.Equal(seen, []string{"notPaid", "checking", "delivering", "delivered"}) {
		t.Errorf("statuses %v", seen)
	}
	var bill struct {
		ID   string `json:"id"`
		Type string `json:"type"`
	}
	if err := c.Get("/me/order/"+strconv.FormatInt(order.OrderID, 10)+"/associatedObject", &bill); err != nil || bill.Type != "Bill" || bill.ID == "" {
		t.Errorf("associated object %+v %v", bill, err)
	}
}
