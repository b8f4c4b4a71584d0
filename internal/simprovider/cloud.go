// Package simprovider is a simulated Pulumi resource provider for engine-level tests, and the
// simulated cloud it creates resources in.
//
// The same binary (cmd/pulumi-resource-sim, built by the tests under the names
// pulumi-resource-aws, pulumi-resource-tls, pulumi-resource-command and pulumi-resource-sim and
// put on PATH, where the engine takes it as an ambient plugin) serves every package its name says.
// It echoes inputs as outputs, gives resources ids shaped like AWS's, replaces them on the
// properties AWS replaces on, answers the program's data sources from the simulated cloud, and
// records every resource it creates, with its tags and URN, in a JSON file shared by all its
// processes. Tests read that file to check nothing exists twice and nothing is left behind, and
// the simulated finder looks orphans up in it the way the AWS finder does in AWS.
//
// Operations can be slowed, failed or blocked on demand through a control file.
package simprovider

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Environment variables the provider reads.
const (
	// EnvCloud is the cloud file's path.
	EnvCloud = "CLAWDEPLOY_SIM_CLOUD"
	// EnvControl is the control file's path (optional).
	EnvControl = "CLAWDEPLOY_SIM_CONTROL"
)

// Resource is one resource in the simulated cloud.
type Resource struct {
	ID      string         `json:"id"`
	Package string         `json:"package"`
	Type    string         `json:"type"`
	URN     string         `json:"urn"`
	Tags    map[string]any `json:"tags,omitempty"`
	Inputs  map[string]any `json:"inputs"`
	Outputs map[string]any `json:"outputs"`
	Created time.Time      `json:"created"`
}

// Op is one operation the provider carried out, in order.
type Op struct {
	Seq  int    `json:"seq"`
	Kind string `json:"kind"` // create, update, delete
	Type string `json:"type"`
	URN  string `json:"urn"`
	ID   string `json:"id"`
}

// Key is a resource's key in the cloud: ids are unique per type only (an S3 bucket's settings
// share its name).
func Key(typ, id string) string { return typ + "|" + id }

// Cloud is the simulated cloud: what exists, and every operation made on it.
type Cloud struct {
	// Resources by Key.
	Resources map[string]Resource `json:"resources"`
	Ops       []Op                `json:"ops"`
	// Snapshots are EBS snapshots tests seed for the AZ guard: id → tags and size.
	Snapshots map[string]Snapshot `json:"snapshots,omitempty"`
}

// Snapshot is a seeded EBS snapshot.
type Snapshot struct {
	Tags   map[string]string `json:"tags"`
	SizeGB int               `json:"sizeGb"`
}

// ByURN returns every resource recorded under a URN: more than one means a duplicate.
func (c *Cloud) ByURN(urn string) []Resource {
	var out []Resource
	for _, r := range c.Resources {
		if r.URN == urn {
			out = append(out, r)
		}
	}
	return out
}

// OfType returns the resources of a type, by creation time.
func (c *Cloud) OfType(typ string) []Resource {
	var out []Resource
	for _, r := range c.Resources {
		if r.Type == typ {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b Resource) int { return a.Created.Compare(b.Created) })
	return out
}

// OpsOn returns the operations on resources of a type.
func (c *Cloud) OpsOn(typ string) []Op {
	var out []Op
	for _, o := range c.Ops {
		if o.Type == typ {
			out = append(out, o)
		}
	}
	return out
}

// Load reads the cloud file; a missing file is an empty cloud.
func Load(path string) (*Cloud, error) {
	var c *Cloud
	err := withLock(path, false, func() error {
		var err error
		c, err = read(path)
		return err
	})
	return c, err
}

// Change applies f to the cloud file under an exclusive lock, so the provider's processes and the
// tests never lose each other's writes.
func Change(path string, f func(*Cloud) error) error {
	return withLock(path, true, func() error {
		c, err := read(path)
		if err != nil {
			return err
		}
		if err := f(c); err != nil {
			return err
		}
		b, err := json.MarshalIndent(c, "", "  ")
		if err != nil {
			return err
		}
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, b, 0o600); err != nil {
			return err
		}
		return os.Rename(tmp, path)
	})
}

func read(path string) (*Cloud, error) {
	c := &Cloud{Resources: map[string]Resource{}, Snapshots: map[string]Snapshot{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, c); err != nil {
		return nil, fmt.Errorf("simulated cloud %s: %w", path, err)
	}
	if c.Resources == nil {
		c.Resources = map[string]Resource{}
	}
	if c.Snapshots == nil {
		c.Snapshots = map[string]Snapshot{}
	}
	return c, nil
}

func withLock(path string, exclusive bool, f func() error) error {
	lock, err := os.OpenFile(path+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	defer func() { _ = lock.Close() }()
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	if err := syscall.Flock(int(lock.Fd()), how); err != nil {
		return err
	}
	defer func() { _ = syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) }()
	return f()
}

// Control is what the control file asks of the provider. Each list holds substrings matched
// against "<kind> <urn>", like "create urn:pulumi:dev::openclaw::...::data-volume".
type Control struct {
	// Delay slows every matching operation.
	Delay map[string]string `json:"delay,omitempty"`
	// Fail makes matching operations fail.
	Fail []string `json:"fail,omitempty"`
	// Block makes matching operations wait until the entry is removed from the file.
	Block []string `json:"block,omitempty"`
	// DefaultDelay slows every operation.
	DefaultDelay string `json:"defaultDelay,omitempty"`
	// NoCapacity are instance types the simulated EC2 has no Spot capacity for: launching one
	// fails as AWS fails it, with InsufficientInstanceCapacity.
	NoCapacity []string `json:"noCapacity,omitempty"`
	// IDs are the ids resources of a type get (type → id), so that a simulated resource can
	// stand for one a test made in moto: every resource of that type created then gets that id.
	IDs map[string]string `json:"ids,omitempty"`
}

// Terminate takes a host away as a Spot interruption does: the resource with the id (an
// instance, or a stand-in for one) is gone, and so is the attachment of its volumes (the volumes
// stay). It returns the attachments removed.
func Terminate(path, id string) (attachments []string, err error) {
	err = Change(path, func(c *Cloud) error {
		found := false
		for k, r := range c.Resources {
			if r.ID == id && r.Type != AttachmentType {
				delete(c.Resources, k)
				c.record("terminate", r.Type, r.URN, id)
				found = true
			}
		}
		if !found {
			return fmt.Errorf("nothing with id %s in the simulated cloud", id)
		}
		for k, r := range c.Resources {
			if r.Type == AttachmentType && fmt.Sprint(r.Inputs["instanceId"]) == id {
				delete(c.Resources, k)
				attachments = append(attachments, r.ID)
			}
		}
		return nil
	})
	return attachments, err
}

// The types Terminate and the capacity control know.
const (
	InstanceType   = "aws:ec2/instance:Instance"
	AttachmentType = "aws:ec2/volumeAttachment:VolumeAttachment"
)

// WriteControl writes a control file.
func WriteControl(path string, c Control) error {
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func readControl() Control {
	var c Control
	path := os.Getenv(EnvControl)
	if path == "" {
		return c
	}
	if b, err := os.ReadFile(path); err == nil {
		_ = json.Unmarshal(b, &c)
	}
	return c
}

func matches(patterns []string, what string) bool {
	for _, p := range patterns {
		if strings.Contains(what, p) {
			return true
		}
	}
	return false
}

// obey applies the control file to one operation: it waits while blocked, sleeps the delay, and
// returns an error when told to fail.
func obey(kind, urn string) error {
	what := kind + " " + urn
	for matches(readControl().Block, what) {
		time.Sleep(50 * time.Millisecond)
	}
	c := readControl()
	delay := c.DefaultDelay
	for p, d := range c.Delay {
		if strings.Contains(what, p) {
			delay = d
		}
	}
	if d, err := time.ParseDuration(delay); err == nil && d > 0 {
		time.Sleep(d)
	}
	if matches(c.Fail, what) {
		return fmt.Errorf("simulated failure of %s", what)
	}
	return nil
}

// record appends an operation to the cloud's log, numbered in order.
func (c *Cloud) record(kind, typ, urn, id string) {
	c.Ops = append(c.Ops, Op{Seq: len(c.Ops) + 1, Kind: kind, Type: typ, URN: urn, ID: id})
}

// TakeSnapshot snapshots a volume of the cloud, as EC2's CreateSnapshot would, with tags, and
// records it as an op ("snapshot") so that its order against other operations can be checked.
func TakeSnapshot(path, volumeID string, tags map[string]string) (id string, err error) {
	err = Change(path, func(c *Cloud) error {
		for _, r := range c.Resources {
			if r.ID == volumeID && r.Type == "aws:ebs/volume:Volume" {
				size, _ := r.Inputs["size"].(float64)
				id = "snap-" + randomHex(17)
				c.Snapshots[id] = Snapshot{Tags: tags, SizeGB: int(size)}
				c.record("snapshot", r.Type, r.URN, id)
				return nil
			}
		}
		return fmt.Errorf("no volume %s in the simulated cloud", volumeID)
	})
	return id, err
}

// PutSnapshot records a snapshot with a given id, as one a test made in moto: the program's
// snapshot lookups (the AZ guard) find it by that id.
func PutSnapshot(path, id string, tags map[string]string, sizeGB int) error {
	return Change(path, func(c *Cloud) error {
		if c.Snapshots == nil {
			c.Snapshots = map[string]Snapshot{}
		}
		c.Snapshots[id] = Snapshot{Tags: tags, SizeGB: sizeGB}
		return nil
	})
}
