package ordering

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ovh/go-ovh/ovh"
)

// OVHConfig is what an order from OVHcloud needs: the API's endpoint and credentials, and the
// plan as the order API names it.
type OVHConfig struct {
	// Endpoint is ovh-eu, ovh-ca, ovh-us or the API's URL.
	Endpoint, ApplicationKey, ApplicationSecret, ConsumerKey string
	// Subsidiary is the OVHcloud entity that bills (FR, GB, CA, US, …).
	Subsidiary string
	// PlanCode is the VPS plan (vps-2025-model1); Datacenter where it runs (GRA, SBG, BHS, …);
	// OS the image it is installed and rebuilt with (Debian 12); Duration the renewal period
	// (P1M).
	PlanCode, Datacenter, OS, Duration string
}

// OVH orders VPSes from OVHcloud's API (/order/cart, /me/order, /vps), signing each call with
// go-ovh.
type OVH struct {
	cfg    OVHConfig
	client *ovh.Client
	// decoded, when set, is told of every answer read and what it was read into: the tests
	// check each field read against OVHcloud's description of the answer.
	decoded func(method, path string, out any)
}

// NewOVH returns the OVH provider for cfg.
func NewOVH(cfg OVHConfig) (*OVH, error) {
	c, err := ovh.NewClient(cfg.Endpoint, cfg.ApplicationKey, cfg.ApplicationSecret, cfg.ConsumerKey)
	if err != nil {
		return nil, fmt.Errorf("ovh_endpoint %q: %w", cfg.Endpoint, err)
	}
	c.Timeout = time.Minute
	c.UserAgent = "clawdeploy"
	return &OVH{cfg: cfg, client: c}, nil
}

// Name is "ovh".
func (o *OVH) Name() string { return "ovh" }

// call is one signed call; an API error names the call.
func (o *OVH) call(ctx context.Context, method, path string, body, out any) error {
	err := o.client.CallAPIWithContext(ctx, method, path, body, out, true)
	route, _, _ := strings.Cut(path, "?")
	var api *ovh.APIError
	if errors.As(err, &api) {
		return &APIError{Call: method + " " + route, Status: api.Code, Message: api.Message}
	}
	if err != nil {
		return fmt.Errorf("OVH API %s %s: %w", method, route, err)
	}
	if o.decoded != nil && out != nil {
		o.decoded(method, route, out)
	}
	return nil
}

// APIError is a call the OVH API refused.
type APIError struct {
	Call    string
	Status  int
	Message string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("OVH API %s: %d %s", e.Call, e.Status, e.Message)
}

// FindPlan checks the credentials (GET /me), the plan (the public VPS catalog) and the
// datacenter's stock (GET /vps/order/rule/datacenter).
func (o *OVH) FindPlan(ctx context.Context) (Plan, error) {
	var me struct {
		Nichandle string `json:"nichandle"`
	}
	if err := o.call(ctx, http.MethodGet, "/me", nil, &me); err != nil {
		var api *APIError
		if errors.As(err, &api) && (api.Status == http.StatusForbidden || api.Status == http.StatusUnauthorized) {
			return Plan{}, fmt.Errorf("OVH refused the credentials (ovh_application_key, ovh_application_secret, ovh_consumer_key): %s", api.Message)
		}
		return Plan{}, err
	}
	q := url.Values{"ovhSubsidiary": {o.cfg.Subsidiary}}
	var catalog struct {
		Plans []struct {
			PlanCode    string `json:"planCode"`
			InvoiceName string `json:"invoiceName"`
		} `json:"plans"`
	}
	if err := o.call(ctx, http.MethodGet, "/order/catalog/public/vps?"+q.Encode(), nil, &catalog); err != nil {
		return Plan{}, err
	}
	var codes []string
	name := ""
	for _, p := range catalog.Plans {
		codes = append(codes, p.PlanCode)
		if p.PlanCode == o.cfg.PlanCode {
			name = p.InvoiceName
		}
	}
	if name == "" {
		return Plan{}, fmt.Errorf("ovh_plan_code %q is not a VPS plan OVHcloud offers to subsidiary %s; it offers %s",
			o.cfg.PlanCode, o.cfg.Subsidiary, strings.Join(codes, ", "))
	}
	q.Set("planCode", o.cfg.PlanCode)
	q.Set("os", o.cfg.OS)
	var rules struct {
		Datacenters []struct {
			Datacenter string `json:"datacenter"`
			Status     string `json:"status"`
		} `json:"datacenters"`
	}
	if err := o.call(ctx, http.MethodGet, "/vps/order/rule/datacenter?"+q.Encode(), nil, &rules); err != nil {
		return Plan{}, err
	}
	var available []string
	status := ""
	for _, d := range rules.Datacenters {
		if d.Status == "available" {
			available = append(available, d.Datacenter)
		}
		if strings.EqualFold(d.Datacenter, o.cfg.Datacenter) {
			status = d.Status
		}
	}
	switch {
	case status == "":
		return Plan{}, fmt.Errorf("ovh_datacenter %q does not offer plan %s; in stock: %s", o.cfg.Datacenter, o.cfg.PlanCode, orNone(available))
	case status != "available":
		return Plan{}, fmt.Errorf("ovh_datacenter %q is %s for plan %s; in stock: %s", o.cfg.Datacenter, status, o.cfg.PlanCode, orNone(available))
	}
	return Plan{Summary: fmt.Sprintf("%s (%s) in %s with %s, renewed every %s, for account %s",
		o.cfg.PlanCode, name, o.cfg.Datacenter, o.cfg.OS, o.cfg.Duration, me.Nichandle)}, nil
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// Services lists the account's VPSes (GET /vps).
func (o *OVH) Services(ctx context.Context) ([]string, error) {
	var names []string
	err := o.call(ctx, http.MethodGet, "/vps", nil, &names)
	return names, err
}

// NewCart makes a cart assigned to the account, holding the plan with its datacenter and image.
func (o *OVH) NewCart(ctx context.Context, description string) (string, error) {
	var cart struct {
		CartID string `json:"cartId"`
	}
	if err := o.call(ctx, http.MethodPost, "/order/cart", map[string]any{
		"ovhSubsidiary": o.cfg.Subsidiary, "description": description,
	}, &cart); err != nil {
		return "", err
	}
	base := "/order/cart/" + url.PathEscape(cart.CartID)
	if err := o.call(ctx, http.MethodPost, base+"/assign", nil, nil); err != nil {
		return "", err
	}
	var item struct {
		ItemID int64 `json:"itemId"`
	}
	if err := o.call(ctx, http.MethodPost, base+"/vps", map[string]any{
		"planCode": o.cfg.PlanCode, "duration": o.cfg.Duration, "pricingMode": "default", "quantity": 1,
	}, &item); err != nil {
		return "", fmt.Errorf("adding ovh_plan_code %s for ovh_duration %s to the cart: %w", o.cfg.PlanCode, o.cfg.Duration, err)
	}
	for _, c := range []struct{ key, label, value string }{
		{"ovh_datacenter", "vps_datacenter", o.cfg.Datacenter},
		{"ovh_os", "vps_os", o.cfg.OS},
	} {
		if err := o.call(ctx, http.MethodPost, fmt.Sprintf("%s/item/%d/configuration", base, item.ItemID),
			map[string]string{"label": c.label, "value": c.value}, nil); err != nil {
			return "", fmt.Errorf("%s %q: %w", c.key, c.value, err)
		}
	}
	return cart.CartID, nil
}

// CheckedOut reads the cart: a checked-out cart is read-only, and one that is gone may have
// been ordered too.
func (o *OVH) CheckedOut(ctx context.Context, cart string) (bool, error) {
	var c struct {
		ReadOnly bool `json:"readOnly"`
	}
	err := o.call(ctx, http.MethodGet, "/order/cart/"+url.PathEscape(cart), nil, &c)
	var api *APIError
	if errors.As(err, &api) && api.Status == http.StatusNotFound {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return c.ReadOnly, nil
}

// Checkout orders the cart, paid with the account's preferred payment method.
func (o *OVH) Checkout(ctx context.Context, cart string) (int64, error) {
	var order struct {
		OrderID int64 `json:"orderId"`
	}
	if err := o.call(ctx, http.MethodPost, "/order/cart/"+url.PathEscape(cart)+"/checkout", map[string]bool{
		"autoPayWithPreferredPaymentMethod": true, "waiveRetractationPeriod": false,
	}, &order); err != nil {
		return 0, err
	}
	if order.OrderID == 0 {
		return 0, fmt.Errorf("OVH API POST /order/cart/%s/checkout returned no orderId", cart)
	}
	return order.OrderID, nil
}

// Delivery reads the order's status; once delivered, the service is the domain of its detail
// for the plan.
func (o *OVH) Delivery(ctx context.Context, order int64) (Delivery, error) {
	var status string
	if err := o.call(ctx, http.MethodGet, fmt.Sprintf("/me/order/%d/status", order), nil, &status); err != nil {
		return Delivery{}, err
	}
	switch status {
	case "cancelled", "cancelling":
		return Delivery{Status: status, Failed: "the order was " + status}, nil
	case "notPaid":
		return Delivery{Status: status}, nil // paid by the preferred method in a while, or by the holder
	case "delivered":
	default:
		return Delivery{Status: status}, nil
	}
	details, err := o.planDetails(ctx, order)
	if err != nil {
		return Delivery{}, err
	}
	for _, d := range details {
		var detail struct {
			Domain string `json:"domain"`
		}
		if err := o.call(ctx, http.MethodGet, fmt.Sprintf("/me/order/%d/details/%d", order, d.id), nil, &detail); err != nil {
			return Delivery{}, err
		}
		if detail.Domain != "" && detail.Domain != "*001" {
			return Delivery{Status: status, Delivered: true, Service: detail.Domain}, nil
		}
	}
	return Delivery{Status: status}, nil // delivered, its service not named yet
}

// OrdersSince lists the account's orders placed since a time (GET /me/order?date.from=) whose
// plan detail is for the configured plan, datacenter and image (each detail's extension: its
// plan code and its vps_datacenter and vps_os configurations).
func (o *OVH) OrdersSince(ctx context.Context, since time.Time) (Orders, error) {
	found := Orders{Of: fmt.Sprintf("%s in %s with %s", o.cfg.PlanCode, o.cfg.Datacenter, o.cfg.OS)}
	var ids []int64
	q := url.Values{"date.from": {since.UTC().Format(time.RFC3339)}}
	if err := o.call(ctx, http.MethodGet, "/me/order?"+q.Encode(), nil, &ids); err != nil {
		return found, err
	}
	slices.Sort(ids)
	for _, id := range ids {
		ours, err := o.orderedHere(ctx, id)
		if err != nil {
			return found, err
		}
		if ours {
			found.IDs = append(found.IDs, id)
		}
	}
	return found, nil
}

// orderedHere reports whether an order has a detail for the configured plan, datacenter and
// image.
func (o *OVH) orderedHere(ctx context.Context, order int64) (bool, error) {
	details, err := o.planDetails(ctx, order)
	if err != nil {
		return false, err
	}
	for _, d := range details {
		if d.ext.configuration("vps_datacenter") == o.cfg.Datacenter && d.ext.configuration("vps_os") == o.cfg.OS {
			return true, nil
		}
	}
	return false, nil
}

// planDetail is an order's detail for the configured plan, with its extension.
type planDetail struct {
	id  int64
	ext ovhDetailExtension
}

// planDetails returns an order's details for the configured plan: those whose extension names
// its plan code, as OVHcloud's Terraform provider finds them.
func (o *OVH) planDetails(ctx context.Context, order int64) ([]planDetail, error) {
	var ids []int64
	if err := o.call(ctx, http.MethodGet, fmt.Sprintf("/me/order/%d/details", order), nil, &ids); err != nil {
		return nil, err
	}
	var out []planDetail
	for _, id := range ids {
		var ext ovhDetailExtension
		if err := o.call(ctx, http.MethodGet, fmt.Sprintf("/me/order/%d/details/%d/extension", order, id), nil, &ext); err != nil {
			return nil, err
		}
		if ext.Order.Plan.Code == o.cfg.PlanCode {
			out = append(out, planDetail{id: id, ext: ext})
		}
	}
	return out, nil
}

// ovhDetailExtension is an order detail's extension (billing.ItemDetail): what was ordered.
type ovhDetailExtension struct {
	Order struct {
		Plan struct {
			Code string `json:"code"`
		} `json:"plan"`
		Configurations []struct {
			Label string `json:"label"`
			Value string `json:"value"`
		} `json:"configurations"`
	} `json:"order"`
}

// configuration returns the value of the detail's configuration label, or "".
func (e ovhDetailExtension) configuration(label string) string {
	for _, c := range e.Order.Configurations {
		if c.Label == label {
			return c.Value
		}
	}
	return ""
}

// IP returns the VPS's first IPv4 address (GET /vps/{serviceName}/ips).
func (o *OVH) IP(ctx context.Context, service string) (string, error) {
	var ips []string
	if err := o.call(ctx, http.MethodGet, "/vps/"+url.PathEscape(service)+"/ips", nil, &ips); err != nil {
		return "", err
	}
	for _, ip := range ips {
		if !strings.Contains(ip, ":") {
			return ip, nil
		}
	}
	return "", fmt.Errorf("VPS %s has no IPv4 address yet (its addresses: %v)", service, ips)
}

// Rebuild reinstalls the VPS with the image named OS, the public key authorized and no
// password sent.
func (o *OVH) Rebuild(ctx context.Context, service, publicKey string) (string, error) {
	base := "/vps/" + url.PathEscape(service)
	var ids []string
	if err := o.call(ctx, http.MethodGet, base+"/images/available", nil, &ids); err != nil {
		return "", err
	}
	image := ""
	var names []string
	for _, id := range ids {
		var img struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		}
		if err := o.call(ctx, http.MethodGet, base+"/images/available/"+url.PathEscape(id), nil, &img); err != nil {
			return "", err
		}
		names = append(names, img.Name)
		if img.Name == o.cfg.OS {
			image = img.ID
		}
	}
	if image == "" {
		return "", fmt.Errorf("ovh_os %q is not an image VPS %s can be rebuilt with; it offers %s", o.cfg.OS, service, orNone(names))
	}
	var task struct {
		ID int64 `json:"id"`
	}
	if err := o.call(ctx, http.MethodPost, base+"/rebuild", map[string]any{
		"imageId": image, "publicSshKey": publicKey, "doNotSendPassword": true,
	}, &task); err != nil {
		return "", err
	}
	return strconv.FormatInt(task.ID, 10), nil
}

// RebuildTasks lists the VPS's rebuild tasks (GET /vps/{serviceName}/tasks?type=reinstallVm).
// A rebuild installs the VPS's system again, a task of type reinstallVm: OVHcloud's description
// of vps.TaskTypeEnum has no other for it (it has no "rebuildVm", the value this used to ask for).
func (o *OVH) RebuildTasks(ctx context.Context, service string) ([]string, error) {
	var ids []int64
	if err := o.call(ctx, http.MethodGet, "/vps/"+url.PathEscape(service)+"/tasks?type=reinstallVm", nil, &ids); err != nil {
		return nil, err
	}
	slices.Sort(ids)
	var out []string
	for _, id := range ids {
		out = append(out, strconv.FormatInt(id, 10))
	}
	return out, nil
}

// Task reads a task of the VPS.
func (o *OVH) Task(ctx context.Context, service, task string) (Task, error) {
	var t struct {
		State string `json:"state"`
	}
	if err := o.call(ctx, http.MethodGet, "/vps/"+url.PathEscape(service)+"/tasks/"+url.PathEscape(task), nil, &t); err != nil {
		return Task{}, err
	}
	return Task{State: t.State, Done: t.State == "done", Failed: t.State == "error" || t.State == "cancelled"}, nil
}

// Release turns the renewal off with deletion at expiry (PUT serviceInfos), which needs no
// human, then asks for the termination (POST terminate), which OVHcloud confirms by an email
// to the account holder.
func (o *OVH) Release(ctx context.Context, service string) (Release, error) {
	base := "/vps/" + url.PathEscape(service)
	var info struct {
		Expiration string `json:"expiration"`
	}
	if err := o.call(ctx, http.MethodGet, base+"/serviceInfos", nil, &info); err != nil {
		return Release{}, err
	}
	if err := o.call(ctx, http.MethodPut, base+"/serviceInfos", map[string]any{
		"renew": map[string]any{"automatic": false, "deleteAtExpiration": true, "forced": false},
	}, nil); err != nil {
		return Release{}, err
	}
	r := Release{Done: []string{fmt.Sprintf("renewal of VPS %s turned off: OVHcloud deletes it at its expiry (%s)", service, info.Expiration)}}
	if err := o.call(ctx, http.MethodPost, base+"/terminate", nil, nil); err != nil {
		r.ToConfirm = append(r.ToConfirm, fmt.Sprintf("the termination request was refused (%v): to stop it before %s, "+
			"terminate VPS %s in the OVHcloud manager", err, info.Expiration, service))
		return r, nil
	}
	r.Done = append(r.Done, "termination of VPS "+service+" requested")
	r.ToConfirm = append(r.ToConfirm, fmt.Sprintf("OVHcloud emailed the account holder a link to confirm the termination of %s "+
		"now; unconfirmed, it is deleted at its expiry (%s) and billed until then", service, info.Expiration))
	return r, nil
}
