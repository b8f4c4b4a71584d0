// Package ovhfake is a fake of the parts of OVHcloud's API (https://eu.api.ovh.com/1.0) that
// clawdeploy orders VPSes with, on a loopback port, in the real API's shapes: /auth/time, /me,
// the public VPS catalog, /vps/order/rule/datacenter, /order/cart (create, assign, vps item,
// item configuration, read, checkout), /me/order (the orders since a date; an order, its status,
// associated object, details and detail extension), and /vps/{serviceName} (ips,
// images/available, rebuild, tasks, serviceInfos, terminate).
//
// It follows OVHcloud's published description of those calls (schema/, see SOURCE.md): every
// call it serves and every answer it gives is checked against it, and one the description does
// not allow fails the test. It checks every authenticated call's signature as OVHcloud does
// ("$1$" + SHA-1 of secret+consumer+method+url+body+timestamp) and refuses unknown credentials
// with 403; a call the description marks noAuthentication needs none. A cart is checked out only
// once assigned. An order goes notPaid, checking, delivering (a quarter, a quarter and a half of
// its delivery delay), then delivered; its associated object is its bill once paid. Rebuilds are
// done after another delay; any call can be made to fail or to hold its answer after it took
// effect (a process killed while waiting for it), and orders, rebuilds and releases are counted.
package ovhfake

import (
	"crypto/sha1" //nolint:gosec // OVHcloud's signature is SHA-1
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Options shape the fake account.
type Options struct {
	// Credentials the fake accepts.
	ApplicationKey, ApplicationSecret, ConsumerKey string
	// Plans offered, by plan code, each with its datacenters and their stock status
	// ("available" or "out-of-stock").
	Plans map[string]map[string]string
	// Images offered to the orders and rebuilds (Debian 12, …).
	Images []string
	// DeliveryDelay is how long an order takes from checkout to delivered; RebuildDelay a
	// rebuild task from doing to done.
	DeliveryDelay, RebuildDelay time.Duration
	// IP is the address of every delivered VPS (the test's sshd).
	IP string
	// Rebuilt is called when a rebuild is done, with the public key it installs: the test puts
	// it on its host.
	Rebuilt func(service, publicKey string)
	// Existing are VPSes the account already has.
	Existing []string
}

// Server is a running fake.
type Server struct {
	URL  string
	opts Options

	mu       sync.Mutex
	nextID   int64
	carts    map[string]*cart
	orders   map[int64]*order
	vpses    map[string]*vps
	tasks    map[int64]*task
	fail     map[string][]int // route → statuses still to answer with
	holds    map[string]chan string
	checkout int
	rebuilds int
	calls    []string

	schema     *Schema
	violations []string // calls and answers OVHcloud's description does not allow
}

type cart struct {
	id, description, subsidiary string
	assigned, readOnly          bool
	items                       []int64
	plan, duration              string
	config                      map[string]string
}

type order struct {
	id               int64
	plan, datacenter string
	os, duration     string
	placed           time.Time
	// outside is an order PlaceOrder placed, delivered after delay; a checkout's order is
	// delivered after Options.DeliveryDelay, which DeliverAfter may change.
	outside bool
	delay   time.Duration
	service string
}

type vps struct {
	name      string
	renew     map[string]any
	terminate bool
}

type task struct {
	id      int64
	service string
	typ     string
	started time.Time
	key     string
	done    bool
}

// Start serves the fake on 127.0.0.1 until the test ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	s := &Server{opts: opts, nextID: 1000, carts: map[string]*cart{}, orders: map[int64]*order{}, vpses: map[string]*vps{},
		tasks: map[int64]*task{}, fail: map[string][]int{}, holds: map[string]chan string{}}
	for _, name := range opts.Existing {
		s.vpses[name] = &vps{name: name}
	}
	schema, err := LoadSchema()
	if err != nil {
		t.Fatal(err)
	}
	s.schema = schema
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(s.serve), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() {
		s.mu.Lock()
		for _, h := range s.holds {
			close(h)
		}
		s.holds = map[string]chan string{}
		violations := slices.Compact(slices.Sorted(slices.Values(s.violations)))
		s.mu.Unlock()
		_ = srv.Close()
		for _, v := range violations {
			t.Errorf("ovhfake: not as OVHcloud's API describes it: %s", v)
		}
	})
	s.URL = "http://" + l.Addr().String() + "/1.0"
	return s
}

// Fail makes the next calls of route answer with status, one per status given. Routes are
// named "METHOD /path" with {} for each identifier: "POST /order/cart/{}/checkout".
func (s *Server) Fail(route string, statuses ...int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail[route] = append(s.fail[route], statuses...)
}

// Hold makes the next call of route take effect and then hold its answer until the test ends.
// The returned channel receives the route when the call has taken effect.
func (s *Server) Hold(route string) <-chan string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := make(chan string, 1)
	s.holds[route] = ch
	return ch
}

// DeliverAfter changes how long orders take from checkout to delivered, for orders already
// placed too: a test holds a delivery with a long delay, then lets it happen with 0.
func (s *Server) DeliverAfter(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opts.DeliveryDelay = d
}

// Orders counts the checkouts that placed an order; Rebuilds the rebuilds asked for.
func (s *Server) Orders() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.checkout
}

// Checkouts lists the orders the account's checkouts placed, oldest first (not those of
// PlaceOrder).
func (s *Server) Checkouts() []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []int64
	for id, o := range s.orders {
		if !o.outside {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// Rebuilds counts the rebuilds asked for.
func (s *Server) Rebuilds() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rebuilds
}

// Calls returns every call served, as "METHOD /path".
func (s *Server) Calls() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// Service returns the renewal settings and whether termination was asked for, of a VPS.
func (s *Server) Service(name string) (renew map[string]any, terminate bool, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.vpses[name]
	if !ok {
		return nil, false, false
	}
	return v.renew, v.terminate, true
}

// Services lists the account's VPSes.
func (s *Server) Services() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deliverLocked(time.Now())
	var out []string
	for n := range s.vpses {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

type apiError struct {
	status  int
	message string
}

func errorf(status int, format string, args ...any) *apiError {
	return &apiError{status: status, message: fmt.Sprintf(format, args...)}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	path := strings.TrimPrefix(r.URL.Path, "/1.0")
	parts := strings.Split(strings.Trim(path, "/"), "/")
	route := r.Method + " " + routeOf(parts)

	s.mu.Lock()
	s.calls = append(s.calls, route)
	s.violations = append(s.violations, s.schema.CheckRequest(r.Method, path, slices.Collect(maps.Keys(r.URL.Query())), body)...)
	var (
		out any
		err *apiError
	)
	// A call the description marks noAuthentication needs no signature (the catalog, a cart
	// before its checkout); a signed one is checked all the same, as the API does.
	if op, ok := s.schema.Operation(r.Method, path); !ok || !op.NoAuthentication || r.Header.Get("X-Ovh-Signature") != "" {
		err = s.authenticate(r, body)
	}
	if err == nil {
		if statuses := s.fail[route]; len(statuses) > 0 {
			s.fail[route] = statuses[1:]
			err = errorf(statuses[0], "fake failure of %s", route)
		}
	}
	if err == nil {
		out, err = s.handle(r, parts, body)
	}
	if err == nil {
		var answer any
		b, _ := json.Marshal(out)
		_ = json.Unmarshal(b, &answer)
		s.violations = append(s.violations, s.schema.CheckResponse(r.Method, path, answer)...)
	}
	hold := s.holds[route]
	if err == nil && hold != nil {
		delete(s.holds, route)
	}
	s.mu.Unlock()

	if err == nil && hold != nil {
		hold <- route
		<-hold // closed when the test ends: the answer never comes
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Ovh-QueryID", "EU.ext-fake."+strconv.Itoa(len(body)))
	if err != nil {
		w.WriteHeader(err.status)
		_ = json.NewEncoder(w).Encode(map[string]string{"message": err.message})
		return
	}
	_ = json.NewEncoder(w).Encode(out)
}

// routeOf names a path with its identifiers replaced by {}.
func routeOf(parts []string) string {
	fixed := map[string]bool{"auth": true, "time": true, "me": true, "order": true, "catalog": true, "public": true,
		"vps": true, "rule": true, "datacenter": true, "cart": true, "assign": true, "item": true, "configuration": true,
		"checkout": true, "status": true, "associatedObject": true, "details": true, "extension": true, "ips": true, "images": true, "available": true,
		"rebuild": true, "tasks": true, "serviceInfos": true, "terminate": true}
	out := make([]string, len(parts))
	for i, p := range parts {
		if fixed[p] {
			out[i] = p
		} else {
			out[i] = "{}"
		}
	}
	return "/" + strings.Join(out, "/")
}

// authenticate checks the headers go-ovh sends, as OVHcloud does.
func (s *Server) authenticate(r *http.Request, body []byte) *apiError {
	ak, ck := r.Header.Get("X-Ovh-Application"), r.Header.Get("X-Ovh-Consumer")
	ts, sig := r.Header.Get("X-Ovh-Timestamp"), r.Header.Get("X-Ovh-Signature")
	if ak != s.opts.ApplicationKey {
		return errorf(http.StatusForbidden, "Invalid application key")
	}
	if ck != s.opts.ConsumerKey {
		return errorf(http.StatusForbidden, "This credential does not exist")
	}
	stamp, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || time.Since(time.Unix(stamp, 0)).Abs() > 3*time.Minute {
		return errorf(http.StatusBadRequest, "Query out of time")
	}
	target := "http://" + r.Host + r.URL.RequestURI()
	sum := sha1.Sum(fmt.Appendf(nil, "%s+%s+%s+%s+%s+%s", s.opts.ApplicationSecret, ck, r.Method, target, body, ts)) //nolint:gosec // OVHcloud's signature
	if sig != fmt.Sprintf("$1$%x", sum) {
		return errorf(http.StatusBadRequest, "Invalid signature")
	}
	return nil
}

func (s *Server) id() int64 {
	s.nextID++
	return s.nextID
}

// deliverLocked delivers the orders and finishes the tasks whose time has come.
func (s *Server) deliverLocked(now time.Time) {
	for _, o := range s.orders {
		if o.service == "" && s.statusLocked(o, now) == "delivered" {
			o.service = fmt.Sprintf("vps-%x.vps.ovh.net", o.id)
			s.vpses[o.service] = &vps{name: o.service}
		}
	}
	for _, t := range s.tasks {
		if !t.done && now.Sub(t.started) >= s.opts.RebuildDelay {
			t.done = true
			if s.opts.Rebuilt != nil {
				s.opts.Rebuilt(t.service, t.key)
			}
		}
	}
}

// statusLocked is an order's status at now: notPaid until its payment by the preferred method
// (the first quarter of its delivery time), checking (the second), delivering, then delivered.
func (s *Server) statusLocked(o *order, now time.Time) string {
	delay := s.opts.DeliveryDelay
	if o.outside {
		delay = o.delay
	}
	switch age := now.Sub(o.placed); {
	case age >= delay:
		return "delivered"
	case age < delay/4:
		return "notPaid"
	case age < delay/2:
		return "checking"
	}
	return "delivering"
}

// PlaceOrder places an order on the account as someone else would (another deployment, the
// manager): for plan in datacenter, delivered after delay. It returns the order's id.
func (s *Server) PlaceOrder(plan, datacenter string, delay time.Duration) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.placeLocked(&order{plan: plan, datacenter: datacenter, os: "Debian 12", duration: "P1M", outside: true, delay: delay})
}

// placeLocked places o now and returns its id.
func (s *Server) placeLocked(o *order) int64 {
	o.id, o.placed = s.id(), time.Now()
	s.orders[o.id] = o
	return o.id
}

func (s *Server) handle(r *http.Request, p []string, body []byte) (any, *apiError) {
	s.deliverLocked(time.Now())
	decode := func(v any) *apiError {
		if err := json.Unmarshal(body, v); err != nil {
			return errorf(http.StatusBadRequest, "Invalid JSON body: %v", err)
		}
		return nil
	}
	q := r.URL.Query()
	switch route := r.Method + " " + routeOf(p); route {
	case "GET /auth/time":
		return time.Now().Unix(), nil
	case "GET /me":
		return map[string]any{"nichandle": "cd1234-ovh", "ovhSubsidiary": "FR", "currency": map[string]string{"code": "EUR"}}, nil
	case "GET /order/catalog/public/vps":
		var plans []map[string]any
		for _, code := range slices.Sorted(maps.Keys(s.opts.Plans)) {
			plans = append(plans, map[string]any{"planCode": code, "invoiceName": "VPS " + code, "product": code, "pricingType": "rental"})
		}
		return map[string]any{"catalogId": 1, "locale": map[string]string{"subsidiary": q.Get("ovhSubsidiary")}, "plans": plans}, nil
	case "GET /vps/order/rule/datacenter":
		dcs, ok := s.opts.Plans[q.Get("planCode")]
		if !ok {
			return nil, errorf(http.StatusNotFound, "Plan %s not found", q.Get("planCode"))
		}
		var list []map[string]string
		for _, dc := range slices.Sorted(maps.Keys(dcs)) {
			list = append(list, map[string]string{"datacenter": dc, "status": dcs[dc]})
		}
		return map[string]any{"datacenters": list}, nil
	case "POST /order/cart":
		var in struct {
			OvhSubsidiary string `json:"ovhSubsidiary"`
			Description   string `json:"description"`
		}
		if err := decode(&in); err != nil {
			return nil, err
		}
		if in.OvhSubsidiary == "" {
			return nil, errorf(http.StatusBadRequest, "Missing parameter(s): ovhSubsidiary")
		}
		c := &cart{id: fmt.Sprintf("cart-%d", s.id()), description: in.Description, subsidiary: in.OvhSubsidiary, config: map[string]string{}}
		s.carts[c.id] = c
		return cartJSON(c), nil
	case "GET /order/cart/{}":
		c, ok := s.carts[p[2]]
		if !ok {
			return nil, errorf(http.StatusNotFound, "Cart %s not found", p[2])
		}
		return cartJSON(c), nil
	case "POST /order/cart/{}/assign":
		c, ok := s.carts[p[2]]
		if !ok {
			return nil, errorf(http.StatusNotFound, "Cart %s not found", p[2])
		}
		c.assigned = true
		return nil, nil
	case "POST /order/cart/{}/vps":
		c, ok := s.carts[p[2]]
		if !ok {
			return nil, errorf(http.StatusNotFound, "Cart %s not found", p[2])
		}
		var in struct {
			PlanCode, Duration, PricingMode string
			Quantity                        int
		}
		if err := decode(&in); err != nil {
			return nil, err
		}
		if _, ok := s.opts.Plans[in.PlanCode]; !ok {
			return nil, errorf(http.StatusBadRequest, "Plan %s not available in this cart", in.PlanCode)
		}
		if in.Duration != "P1M" && in.Duration != "P3M" && in.Duration != "P6M" && in.Duration != "P12M" {
			return nil, errorf(http.StatusBadRequest, "Duration %s not available for plan %s", in.Duration, in.PlanCode)
		}
		item := s.id()
		c.items, c.plan, c.duration = append(c.items, item), in.PlanCode, in.Duration
		return map[string]any{"cartId": c.id, "itemId": item, "productId": "vps", "settings": map[string]any{"planCode": in.PlanCode}}, nil
	case "POST /order/cart/{}/item/{}/configuration":
		c, ok := s.carts[p[2]]
		if !ok {
			return nil, errorf(http.StatusNotFound, "Cart %s not found", p[2])
		}
		var in struct{ Label, Value string }
		if err := decode(&in); err != nil {
			return nil, err
		}
		switch in.Label {
		case "vps_datacenter":
			if _, ok := s.opts.Plans[c.plan][in.Value]; !ok {
				return nil, errorf(http.StatusBadRequest, "Invalid value %s for vps_datacenter", in.Value)
			}
		case "vps_os":
			if !slices.Contains(s.opts.Images, in.Value) {
				return nil, errorf(http.StatusBadRequest, "Invalid value %s for vps_os", in.Value)
			}
		default:
			return nil, errorf(http.StatusBadRequest, "Unknown configuration label %s", in.Label)
		}
		c.config[in.Label] = in.Value
		return map[string]any{"id": s.id(), "label": in.Label, "value": in.Value}, nil
	case "POST /order/cart/{}/checkout":
		c, ok := s.carts[p[2]]
		if !ok {
			return nil, errorf(http.StatusNotFound, "Cart %s not found", p[2])
		}
		if !c.assigned {
			return nil, errorf(http.StatusForbidden, "Cart %s is not assigned to an account: assign it before its checkout", c.id)
		}
		if c.readOnly {
			return nil, errorf(http.StatusBadRequest, "Cart %s is already checked out", c.id)
		}
		if len(c.items) == 0 || c.config["vps_datacenter"] == "" || c.config["vps_os"] == "" {
			return nil, errorf(http.StatusBadRequest, "Cart %s is missing required configuration", c.id)
		}
		if s.opts.Plans[c.plan][c.config["vps_datacenter"]] != "available" {
			return nil, errorf(http.StatusBadRequest, "Product %s is out of stock in %s", c.plan, c.config["vps_datacenter"])
		}
		c.readOnly = true
		id := s.placeLocked(&order{plan: c.plan, datacenter: c.config["vps_datacenter"], os: c.config["vps_os"], duration: c.duration})
		s.checkout++
		return map[string]any{"orderId": id, "url": orderURL(id),
			"prices": map[string]any{"withTax": map[string]any{"value": 7.19, "currencyCode": "EUR"}}}, nil
	case "GET /me/order":
		from, to := time.Time{}, time.Now().Add(time.Hour)
		for name, t := range map[string]*time.Time{"date.from": &from, "date.to": &to} {
			if v := q.Get(name); v != "" {
				parsed, err := time.Parse(time.RFC3339, v)
				if err != nil {
					return nil, errorf(http.StatusBadRequest, "Invalid value for parameter %s: %s is not a datetime", name, v)
				}
				*t = parsed
			}
		}
		ids := []int64{}
		for _, o := range s.orders {
			if !o.placed.Before(from) && !o.placed.After(to) {
				ids = append(ids, o.id)
			}
		}
		slices.Sort(ids)
		return ids, nil
	case "GET /me/order/{}", "GET /me/order/{}/status", "GET /me/order/{}/associatedObject", "GET /me/order/{}/details",
		"GET /me/order/{}/details/{}", "GET /me/order/{}/details/{}/extension":
		id, _ := strconv.ParseInt(p[2], 10, 64)
		o, ok := s.orders[id]
		if !ok {
			return nil, errorf(http.StatusNotFound, "Order %s not found", p[2])
		}
		detail := o.id*10 + 1
		status := s.statusLocked(o, time.Now())
		switch {
		case strings.HasSuffix(route, "/status"):
			return status, nil
		case strings.HasSuffix(route, "/associatedObject"):
			// The object the processing of the order leads to: its bill once paid. The
			// description's types are billing ones only (Bill, Deposit, Refund, …), never the VPS.
			if status == "notPaid" {
				return map[string]any{"id": nil, "type": nil}, nil
			}
			return map[string]any{"id": fmt.Sprintf("FR%d", o.id), "type": "Bill"}, nil
		case strings.HasSuffix(route, "/extension"):
			return map[string]any{"order": map[string]any{"action": "installation", "type": "plan",
				"plan":           map[string]any{"code": o.plan, "duration": o.duration, "pricingMode": "default", "quantity": 1, "product": map[string]any{"name": "vps"}},
				"configurations": []map[string]string{{"label": "vps_datacenter", "value": o.datacenter}, {"label": "vps_os", "value": o.os}}}}, nil
		case strings.HasSuffix(route, "/details"):
			return []int64{detail}, nil
		case route == "GET /me/order/{}":
			return map[string]any{"orderId": o.id, "date": o.placed.Format(time.RFC3339), "expirationDate": o.placed.AddDate(0, 0, 14).Format(time.RFC3339),
				"url":          orderURL(o.id),
				"priceWithTax": map[string]any{"value": 7.19, "currencyCode": "EUR", "text": "7.19 €"}}, nil
		}
		domain := o.service
		if domain == "" {
			domain = "*001"
		}
		return map[string]any{"orderDetailId": detail, "domain": domain, "description": "VPS " + o.plan, "quantity": "1"}, nil
	case "GET /vps":
		names := []string{}
		for n := range s.vpses {
			names = append(names, n)
		}
		slices.Sort(names)
		return names, nil
	}
	if len(p) >= 2 && p[0] == "vps" {
		return s.handleVPS(r, p, decode)
	}
	return nil, errorf(http.StatusNotFound, "Got an invalid (or empty) URL")
}

func (s *Server) handleVPS(r *http.Request, p []string, decode func(any) *apiError) (any, *apiError) {
	v, ok := s.vpses[p[1]]
	if !ok {
		return nil, errorf(http.StatusNotFound, "The requested object (serviceName = %s) does not exist", p[1])
	}
	switch r.Method + " " + routeOf(p) {
	case "GET /vps/{}/ips":
		return []string{s.opts.IP, "2001:db8::1"}, nil
	case "GET /vps/{}/images/available":
		var ids []string
		for i := range s.opts.Images {
			ids = append(ids, fmt.Sprintf("img-%d", i))
		}
		return ids, nil
	case "GET /vps/{}/images/available/{}":
		i, err := strconv.Atoi(strings.TrimPrefix(p[4], "img-"))
		if err != nil || i < 0 || i >= len(s.opts.Images) {
			return nil, errorf(http.StatusNotFound, "Image %s not found", p[4])
		}
		return map[string]string{"id": p[4], "name": s.opts.Images[i]}, nil
	case "POST /vps/{}/rebuild":
		var in struct {
			ImageID           string `json:"imageId"`
			PublicSSHKey      string `json:"publicSshKey"`
			DoNotSendPassword bool   `json:"doNotSendPassword"`
		}
		if err := decode(&in); err != nil {
			return nil, err
		}
		if in.ImageID == "" {
			return nil, errorf(http.StatusBadRequest, "Missing parameter(s): imageId")
		}
		for _, t := range s.tasks {
			if t.service == v.name && !t.done {
				return nil, errorf(http.StatusConflict, "A task is already running on %s", v.name)
			}
		}
		t := &task{id: s.id(), service: v.name, typ: "reinstallVm", started: time.Now(), key: in.PublicSSHKey}
		s.tasks[t.id] = t
		s.rebuilds++
		return taskJSON(t), nil
	case "GET /vps/{}/tasks":
		ids := []int64{}
		for _, t := range s.tasks {
			if t.service == v.name && (r.URL.Query().Get("type") == "" || r.URL.Query().Get("type") == t.typ) {
				ids = append(ids, t.id)
			}
		}
		slices.Sort(ids)
		return ids, nil
	case "GET /vps/{}/tasks/{}":
		id, _ := strconv.ParseInt(p[3], 10, 64)
		t, ok := s.tasks[id]
		if !ok || t.service != v.name {
			return nil, errorf(http.StatusNotFound, "Task %s not found", p[3])
		}
		return taskJSON(t), nil
	case "GET /vps/{}/serviceInfos":
		renew := v.renew
		if renew == nil {
			renew = map[string]any{"automatic": true, "deleteAtExpiration": false, "forced": false, "period": 1}
		}
		return map[string]any{"serviceId": 1, "domain": v.name, "expiration": time.Now().AddDate(0, 1, 0).Format("2006-01-02"),
			"status": "ok", "renew": renew}, nil
	case "PUT /vps/{}/serviceInfos":
		var in struct {
			Renew map[string]any `json:"renew"`
		}
		if err := decode(&in); err != nil {
			return nil, err
		}
		v.renew = in.Renew
		return nil, nil
	case "POST /vps/{}/terminate":
		v.terminate = true
		return "You will receive an email to confirm the termination of your service", nil
	}
	return nil, errorf(http.StatusNotFound, "Got an invalid (or empty) URL")
}

// orderURL is where the manager shows an order.
func orderURL(id int64) string {
	return fmt.Sprintf("https://www.ovh.com/cgi-bin/order/display-order.cgi?orderId=%d", id)
}

func cartJSON(c *cart) map[string]any {
	return map[string]any{"cartId": c.id, "description": c.description, "readOnly": c.readOnly, "items": append([]int64{}, c.items...),
		"expire": time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339)}
}

func taskJSON(t *task) map[string]any {
	state, progress := "doing", 50
	if t.done {
		state, progress = "done", 100
	}
	return map[string]any{"id": t.id, "type": t.typ, "state": state, "progress": progress, "date": t.started.UTC().Format(time.RFC3339)}
}
