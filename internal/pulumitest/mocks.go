package pulumitest

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/tokens"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"

	"github.com/clawdeploy/clawdeploy"
)

// Project is the project name programs run under, as in Pulumi.yaml.
const Project = clawdeploy.Project

// DefaultStack is the stack name programs run under unless WithStack says otherwise.
const DefaultStack = "test"

// Account is the AWS account id the mocks answer with.
const Account = "123456789012"

// Resource is one resource the program registered, with the options the engine would see.
type Resource struct {
	Type   string
	Name   string
	URN    string
	Custom bool
	// ID is the id the mocks gave a custom resource.
	ID string
	// Inputs keep secrets as resource.Secret values, so tests can tell a secret input.
	Inputs resource.PropertyMap
	// Request is the full registration: parent, dependencies, DeleteBeforeReplace, IgnoreChanges,
	// Protect, RetainOnDelete and the rest.
	Request *pulumirpc.RegisterResourceRequest
}

// Parent returns the URN of the resource's parent.
func (r Resource) Parent() string { return r.Request.GetParent() }

// Input returns the input at a dotted path ("metadataOptions.httpTokens"), unwrapping secrets,
// and whether it is set.
func (r Resource) Input(path string) (resource.PropertyValue, bool) {
	v := resource.NewProperty(r.Inputs)
	for _, k := range strings.Split(path, ".") {
		for v.IsSecret() {
			v = v.SecretValue().Element
		}
		if !v.IsObject() {
			return resource.PropertyValue{}, false
		}
		next, ok := v.ObjectValue()[resource.PropertyKey(k)]
		if !ok || next.IsNull() {
			return resource.PropertyValue{}, false
		}
		v = next
	}
	for v.IsSecret() {
		v = v.SecretValue().Element
	}
	return v, true
}

// String returns the input at path as a string, or "" when it is not a string.
func (r Resource) String(path string) string {
	if v, ok := r.Input(path); ok && v.IsString() {
		return v.StringValue()
	}
	return ""
}

// Call is one data-source invocation the program made.
type Call struct {
	Token string
	Args  resource.PropertyMap
}

// CallFunc answers a data-source invocation.
type CallFunc func(args resource.PropertyMap) (resource.PropertyMap, error)

// IDFunc returns the id the provider would give a new resource.
type IDFunc func(name string, inputs resource.PropertyMap) string

// OutputFunc computes extra outputs for a resource of one type from its inputs, the way the
// provider would (a volume's availability zone, an instance's private IP).
type OutputFunc func(name string, inputs resource.PropertyMap) resource.PropertyMap

// Mocks records what a program registers and answers its data-source calls. It implements
// pulumi.MockResourceMonitor.
type Mocks struct {
	stack   string
	region  string
	calls   map[string]CallFunc
	outputs map[string]OutputFunc
	ids     map[string]IDFunc

	mu        sync.Mutex
	resources []Resource
	callLog   []Call
}

// Resources returns what was registered, in registration order.
func (m *Mocks) Resources() []Resource {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.resources)
}

// Calls returns the data-source invocations, in order.
func (m *Mocks) Calls() []Call {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.callLog)
}

// OfType returns the registered resources of one type token.
func (m *Mocks) OfType(typ string) []Resource {
	var out []Resource
	for _, r := range m.Resources() {
		if r.Type == typ {
			out = append(out, r)
		}
	}
	return out
}

// One returns the single resource of a type and name; ok is false when there is none.
func (m *Mocks) One(typ, name string) (Resource, bool) {
	for _, r := range m.Resources() {
		if r.Type == typ && r.Name == name {
			return r, true
		}
	}
	return Resource{}, false
}

// NewResource records the registration and echoes the inputs as outputs, with an id, an arn and
// whatever the type's OutputFunc adds.
func (m *Mocks) NewResource(args pulumi.MockResourceArgs) (string, resource.PropertyMap, error) {
	// The same URN the mock monitor gives the resource.
	parentType := tokens.Type("")
	if p := resource.URN(args.RegisterRPC.GetParent()); p != "" && p.QualifiedType() != resource.RootStackType {
		parentType = p.QualifiedType()
	}
	urn := string(resource.NewURN(tokens.QName(m.stack), Project, parentType, tokens.Type(args.TypeToken), args.Name))
	id := args.ID
	if f, ok := m.ids[args.TypeToken]; ok && id == "" {
		id = f(args.Name, args.Inputs)
	}
	if id == "" && args.Custom {
		id = args.Name + "-id"
	}
	m.mu.Lock()
	m.resources = append(m.resources, Resource{
		Type:    args.TypeToken,
		Name:    args.Name,
		URN:     urn,
		Custom:  args.Custom,
		ID:      id,
		Inputs:  args.Inputs,
		Request: args.RegisterRPC,
	})
	m.mu.Unlock()

	if !args.Custom {
		return "", resource.PropertyMap{}, nil
	}
	out := maps.Clone(args.Inputs)
	if out == nil {
		out = resource.PropertyMap{}
	}
	out["id"] = resource.NewProperty(id)
	if _, ok := out["arn"]; !ok {
		out["arn"] = resource.NewProperty(m.arn(args.TypeToken, id))
	}
	if f, ok := m.outputs[args.TypeToken]; ok {
		maps.Copy(out, f(args.Name, args.Inputs))
	}
	return id, out, nil
}

// arn builds an ARN of the shape AWS uses for the type, which is what policies refer to.
func (m *Mocks) arn(typ, id string) string {
	service := "unknown"
	if parts := strings.Split(typ, ":"); len(parts) == 3 {
		service, _, _ = strings.Cut(parts[1], "/")
	}
	switch service {
	case "s3":
		return "arn:aws:s3:::" + id
	case "iam":
		return "arn:aws:iam::" + Account + ":" + id
	}
	return fmt.Sprintf("arn:aws:%s:%s:%s:%s", service, m.region, Account, id)
}

// Call answers a data-source invocation from the table, and fails on one it does not know, so a
// test never passes on an answer nobody wrote.
func (m *Mocks) Call(args pulumi.MockCallArgs) (resource.PropertyMap, error) {
	m.mu.Lock()
	m.callLog = append(m.callLog, Call{Token: args.Token, Args: args.Args})
	f, ok := m.calls[args.Token]
	m.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("pulumitest: no mock for data source %s", args.Token)
	}
	return f(args.Args)
}
