package automation_test

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	. "github.com/clawdeploy/clawdeploy/automation"
	"github.com/clawdeploy/clawdeploy/internal/ovhfake"
	"github.com/clawdeploy/clawdeploy/internal/simprogram"
	"github.com/clawdeploy/clawdeploy/internal/sshd"
	"github.com/clawdeploy/clawdeploy/ordering"
	"github.com/clawdeploy/clawdeploy/setup"
	"github.com/clawdeploy/clawdeploy/targets/vps"
)

// ovhWorld is a vps world whose host is ordered from the fake OVH API (ovhfake): every VPS it
// delivers is the world's sshd, and a rebuild authorizes the key it was given there, as a real
// rebuild installs it.
type ovhWorld struct {
	*vpsWorld
	ovh *ovhfake.Server
	mu  sync.Mutex
	// keys are the keys the rebuilds installed.
	keys []string
}

func newOVHWorld(t *testing.T, delivery time.Duration) *ovhWorld {
	t.Helper()
	w := &ovhWorld{vpsWorld: newVPSWorld(t, simprogram.SetupScript(1, false))}
	authorized := filepath.Join(w.server.Home, ".ssh", "authorized_keys")
	w.ovh = ovhfake.Start(t, ovhfake.Options{
		ApplicationKey: "akTEST12345", ApplicationSecret: "as-test-secret", ConsumerKey: "ck-test-secret",
		Plans:  map[string]map[string]string{"vps-2025-model1": {"GRA": "available"}},
		Images: []string{"Debian 12"}, DeliveryDelay: delivery, RebuildDelay: 300 * time.Millisecond, IP: "127.0.0.1",
		Rebuilt: func(_, key string) {
			w.mu.Lock()
			defer w.mu.Unlock()
			w.keys = append(w.keys, key)
			f, err := os.OpenFile(authorized, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
			if err == nil {
				_, _ = f.WriteString(key + "\n")
				_ = f.Close()
			}
		},
	})
	return w
}

// orderArgs are the arguments of an up that orders the stack's VPS from the fake.
func (w *ovhWorld) orderArgs(stack string, extra ...string) []string {
	return append([]string{
		"--target", "vps", "up", "--stack", stack, "--setup-poll", "100ms",
		"--config", "vps_provider=ovh",
		"--config", "ovh_endpoint=" + w.ovh.URL,
		"--config", "ovh_application_key=akTEST12345",
		"--secret", "ovh_application_secret=as-test-secret",
		"--secret", "ovh_consumer_key=ck-test-secret",
		"--config", "ovh_plan_code=vps-2025-model1",
		"--config", "ovh_datacenter=GRA",
		"--config", "vps_port=" + strconv.Itoa(w.server.Port),
		"--config", "vps_user=" + w.server.User,
		"--config", "vps_setup_root=" + w.root,
		"--secret", "gateway_token=gw-ovh-token",
	}, extra...)
}

// checkOrderedOnce asserts an ordered deployment READY on one order and one rebuild, the setup
// launched once, and the host pinned.
func (w *ovhWorld) checkOrderedOnce(t *testing.T, stack string) {
	t.Helper()
	if rec := status(t, w.sim, "vps", stack); rec["status"] != "READY" || rec["stage"] != StageSetupComplete {
		t.Errorf("journal: %v", rec)
	}
	if w.ovh.Orders() != 1 || w.ovh.Rebuilds() != 1 {
		t.Errorf("%d orders and %d rebuilds, want one each", w.ovh.Orders(), w.ovh.Rebuilds())
	}
	if n := w.launches(); n != 1 {
		t.Errorf("the setup script was launched %d times", n)
	}
	out := w.outputs(t, stack)
	if out["ssh_host"] != "127.0.0.1" || out["ssh_host_key"] != w.server.HostKey {
		t.Errorf("outputs: host %v, host key %v (want the rebuilt VPS's, pinned)", out["ssh_host"], out["ssh_host_key"])
	}
}

func stagesOf(events ...[]Event) []string {
	return distinct(slices.Concat(events...), EventStage, func(e Event) string { return e.Stage })
}

// distinct returns what key reads from the events of type typ, each once, in the order they came.
func distinct(events []Event, typ string, key func(Event) string) []string {
	var out []string
	for _, e := range events {
		if e.Type == typ && !slices.Contains(out, key(e)) {
			out = append(out, key(e))
		}
	}
	return out
}

// TestVPSOrderedFromOVH orders the deployment's VPS from the fake OVH API: every stage of the
// provisioning flow in its order, ORDERING from the checkout to the delivery, READY on one order
// and one rebuild with the deployment's own key. A second up orders nothing; destroy turns the
// renewal off, asks for the termination and says what the account holder has to confirm.
func TestVPSOrderedFromOVH(t *testing.T) {
	t.Parallel()
	w := newOVHWorld(t, 500*time.Millisecond)
	previewArgs := slices.Concat([]string{"--target", "vps", "preview"}, w.orderArgs("ovh1")[3:5], w.orderArgs("ovh1")[7:])
	preview, code := runSim(t, w.sim, "vps", previewArgs...)
	if code != 0 || w.ovh.Orders() != 0 {
		t.Fatalf("preview before the order: exit %d, %d orders\n%s", code, w.ovh.Orders(), preview.stderr.String())
	}
	p, code := runSim(t, w.sim, "vps", w.orderArgs("ovh1")...)
	if code != 0 {
		t.Fatalf("up: exit %d\n%s", code, p.stderr.String())
	}
	w.checkOrderedOnce(t, "ovh1")
	var want []string
	for _, s := range vps.Stages.Order {
		if s != vps.StageOpenRouterKeyCreated {
			want = append(want, s)
		}
	}
	if got := stagesOf(p.events); !slices.Equal(got, want) {
		t.Errorf("stages %v, want %v", got, want)
	}
	var statuses []string
	for _, e := range p.events {
		if e.Type == EventStatus {
			statuses = append(statuses, e.Status)
		}
	}
	if !slices.Equal(statuses, []string{"PROVISIONING", "ORDERING", "PROVISIONING", "INSTALLING", "READY"}) {
		t.Errorf("statuses %v", statuses)
	}
	if len(w.keys) != 1 || !strings.HasPrefix(w.keys[0], "ssh-ed25519 ") || !strings.HasSuffix(w.keys[0], " clawdeploy-ovh1") {
		t.Errorf("the rebuild installed %q", w.keys)
	}

	calls := len(w.ovh.Calls())
	if again, code := runSim(t, w.sim, "vps", w.orderArgs("ovh1")...); code != 0 {
		t.Fatalf("second up: exit %d\n%s", code, again.stderr.String())
	}
	if n := len(w.ovh.Calls()) - calls; n != 0 || w.ovh.Orders() != 1 {
		t.Errorf("a second up made %d OVH calls (%d orders)", n, w.ovh.Orders())
	}

	d, code := runSim(t, w.sim, "vps", "--target", "vps", "destroy", "--stack", "ovh1", "--yes")
	if code != 0 {
		t.Fatalf("destroy: exit %d\n%s", code, d.stderr.String())
	}
	service := w.ovh.Services()[0]
	renew, terminate, _ := w.ovh.Service(service)
	if renew["automatic"] != false || renew["deleteAtExpiration"] != true || !terminate {
		t.Errorf("after destroy: renew %v, termination asked %v", renew, terminate)
	}
	result := d.events[len(d.events)-1]
	if result.Type != EventResult || result.Released == nil || len(result.Released.Done) != 2 || len(result.Released.ToConfirm) != 1 ||
		!strings.Contains(result.Released.ToConfirm[0], service) {
		t.Errorf("the destroy's result says %+v", result.Released)
	}
}

// TestVPSOrderKilledAnywhere kills the driver at every stage boundary of an ordered VPS and in
// each window where an answer could be lost (after the checkout placed the order, before its id
// was recorded; while the delivery is polled; after the rebuild was asked for, before its task
// was recorded). A new process resumes to READY on one order and one rebuild.
func TestVPSOrderKilledAnywhere(t *testing.T) {
	t.Parallel()
	type killCase struct {
		name string
		// at returns when the driver is to be killed.
		at func(w *ovhWorld, p *proc) bool
		// left checks what the journal kept of the order after the kill; nil checks nothing.
		left func(order map[string]any) bool
	}
	atStage := func(stage string) func(*ovhWorld, *proc) bool {
		return func(_ *ovhWorld, p *proc) bool {
			p.waitFor("stage "+stage, func(e Event) bool { return e.Type == EventStage && e.Stage == stage })
			return true
		}
	}
	var cases []killCase
	for _, s := range []string{"ssh_key_generated", ordering.StagePlanFound, ordering.StageOrdered, ordering.StageDelivered,
		ordering.StageIPAcquired, ordering.StageRebuilt, "ssh_ready", StageSetupLaunched} {
		cases = append(cases, killCase{name: "after " + s, at: atStage(s)})
	}
	held := func(route string) func(*ovhWorld, *proc) bool {
		return func(w *ovhWorld, p *proc) bool {
			select {
			case <-w.ovh.Hold(route):
				return true
			case <-p.done:
				return false
			case <-time.After(2 * time.Minute):
				return false
			}
		}
	}
	cases = append(cases,
		killCase{name: "checkout answered, order id not recorded", at: held("POST /order/cart/{}/checkout"),
			left: func(o map[string]any) bool { return o["checkoutStarted"] != nil && o["orderId"] == nil }},
		killCase{name: "rebuild asked, task not recorded", at: held("POST /vps/{}/rebuild"),
			left: func(o map[string]any) bool { return o["rebuildStarted"] != nil && o["rebuildTask"] == nil }},
		// The delivery is held until the driver has polled the order's status twice.
		killCase{name: "polling the delivery", at: func(w *ovhWorld, p *proc) bool {
			w.ovh.DeliverAfter(time.Hour)
			p.waitFor("ORDERING", func(e Event) bool { return e.Type == EventStatus && e.Status == "ORDERING" })
			for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
				polls := 0
				for _, c := range w.ovh.Calls() {
					if c == "GET /me/order/{}/status" {
						polls++
					}
				}
				if polls >= 2 {
					return true
				}
			}
			return false
		}, left: func(o map[string]any) bool { return o["orderId"] != nil && o["service"] == nil }},
	)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			w := newOVHWorld(t, 1500*time.Millisecond)
			p := startSim(t, w.sim, "vps", w.orderArgs("ovh1")...)
			if !c.at(w, p) {
				t.Fatalf("the up never got there\n%s", p.stderr.String())
			}
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			p.wait(time.Minute)
			if order, _ := status(t, w.sim, "vps", "ovh1")["hostOrder"].(map[string]any); c.left != nil && !c.left(order) {
				t.Fatalf("the kill did not happen in its window: the journal kept %v", order)
			}
			w.ovh.DeliverAfter(0)
			r, code := runSim(t, w.sim, "vps", "--target", "vps", "resume", "--stack", "ovh1", "--setup-poll", "100ms")
			if code != 0 {
				t.Fatalf("resume: exit %d\n%s", code, r.stderr.String())
			}
			w.checkOrderedOnce(t, "ovh1")
			if got := stagesOf(p.events, r.events); !slices.Contains(got, ordering.StageRebuilt) || !slices.Contains(got, StageSetupComplete) {
				t.Errorf("stages reported: %v", got)
			}
		})
	}
}

// TestVPSDeliveryTimeoutThenRetry: a delivery past ovh_delivery_timeout leaves the deployment
// ERROR with the order standing; up --retry waits for the same order and reaches READY.
func TestVPSDeliveryTimeoutThenRetry(t *testing.T) {
	t.Parallel()
	w := newOVHWorld(t, 6*time.Second)
	p, code := runSim(t, w.sim, "vps", w.orderArgs("ovh1", "--config", "ovh_delivery_timeout=1s")...)
	if rec := status(t, w.sim, "vps", "ovh1"); code != 1 || rec["status"] != "ERROR" ||
		!strings.Contains(rec["lastError"].(string), "was not delivered within 1s") {
		t.Fatalf("up past the delivery budget: exit %d, %v\n%s", code, rec, p.stderr.String())
	}
	r, code := runSim(t, w.sim, "vps", w.orderArgs("ovh1", "--retry", "--config", "ovh_delivery_timeout=2m")...)
	if code != 0 {
		t.Fatalf("up --retry: exit %d\n%s", code, r.stderr.String())
	}
	w.checkOrderedOnce(t, "ovh1")
}

// TestVPSNonRootUser logs in as users other than root, as VPS images do (debian, ubuntu): with
// passwordless sudo the launch, the polls and the setup run through sudo -n and the deployment
// is READY; without it, ssh_ready fails and says why, before anything is launched.
func TestVPSNonRootUser(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		user string
		sudo bool
	}{{"clawsudo", true}, {"clawnosudo", false}} {
		t.Run(c.user, func(t *testing.T) {
			t.Parallel()
			sshd.AddUser(t, c.user, c.sudo)
			w := newVPSWorldOn(t, simprogram.SetupScript(1, false), sshd.StartFor(t, c.user))
			onHost := watchArgv(w.server.PID())
			p, code := runSim(t, w.sim, "vps", w.upArgs("vps1")...)
			hostLines := onHost.end()
			rec := status(t, w.sim, "vps", "vps1")
			if c.sudo {
				if code != 0 || rec["status"] != "READY" || w.launches() != 1 {
					t.Fatalf("with sudo: exit %d, %v, %d launches\n%s", code, rec, w.launches(), p.stderr.String())
				}
				// The launch went through sudo, and carried the gateway token in no command line.
				if !slices.ContainsFunc(hostLines, func(l string) bool { return strings.HasPrefix(l, "sudo -n -H bash") }) {
					t.Errorf("the watch saw no launch through sudo on the host: %q", hostLines)
				}
				for _, l := range hostLines {
					if holdsSecret(l, "gw-vps-token") {
						t.Errorf("the gateway token is in the arguments of %.300q on the host", l)
					}
				}
				// The setup ran as root: its markers are root's.
				if info, err := os.Stat(filepath.Join(w.root, setup.CompleteFile)); err != nil || info.Sys().(*syscall.Stat_t).Uid != 0 {
					t.Errorf("the complete marker: %v", err)
				}
				return
			}
			last, _ := rec["lastError"].(string)
			if code != 1 || rec["status"] != "ERROR" || !strings.Contains(last, "user clawnosudo logged in, but cannot run sudo without a password") ||
				w.launches() != 0 || slices.Contains(stagesOf(p.events), "ssh_ready") {
				t.Errorf("without sudo: exit %d, %v, %d launches, stages %v", code, rec, w.launches(), stagesOf(p.events))
			}
		})
	}
}
