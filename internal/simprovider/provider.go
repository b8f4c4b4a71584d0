package simprovider

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	pbempty "google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"

	"github.com/clawdeploy/clawdeploy/internal/awsmock"
)

// Versions the simulated packages report: the ones the program's SDKs ask for.
var Versions = map[string]string{
	"aws":     "6.83.2",
	"tls":     "5.2.0",
	"command": "1.1.0",
	"sim":     "1.0.0",
}

// Account is the simulated AWS account.
const Account = "123456789012"

// Provider serves one simulated package.
type Provider struct {
	pulumirpc.UnimplementedResourceProviderServer
	pkg   string
	cloud string
}

// New returns the provider of pkg, recording into the cloud file named by EnvCloud.
func New(pkg string) (*Provider, error) {
	cloud := os.Getenv(EnvCloud)
	if cloud == "" {
		return nil, fmt.Errorf("simprovider: %s is not set", EnvCloud)
	}
	return &Provider{pkg: pkg, cloud: cloud}, nil
}

var opts = plugin.MarshalOptions{KeepUnknowns: true, KeepSecrets: true, KeepResources: true, KeepOutputValues: true}

func unmarshal(s *structpb.Struct) (resource.PropertyMap, error) {
	return plugin.UnmarshalProperties(s, opts)
}

func marshal(m resource.PropertyMap) (*structpb.Struct, error) {
	return plugin.MarshalProperties(m, opts)
}

// GetPluginInfo reports the package's version.
func (p *Provider) GetPluginInfo(context.Context, *pbempty.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: Versions[p.pkg]}, nil
}

// GetSchema returns a minimal schema.
func (p *Provider) GetSchema(context.Context, *pulumirpc.GetSchemaRequest) (*pulumirpc.GetSchemaResponse, error) {
	return &pulumirpc.GetSchemaResponse{Schema: fmt.Sprintf(`{"name":%q,"version":%q}`, p.pkg, Versions[p.pkg])}, nil
}

// CheckConfig accepts any configuration.
func (p *Provider) CheckConfig(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	return &pulumirpc.CheckResponse{Inputs: req.GetNews()}, nil
}

// DiffConfig never asks for a new provider.
func (p *Provider) DiffConfig(context.Context, *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	return &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_NONE}, nil
}

// Configure accepts secrets and previews.
func (p *Provider) Configure(context.Context, *pulumirpc.ConfigureRequest) (*pulumirpc.ConfigureResponse, error) {
	return &pulumirpc.ConfigureResponse{AcceptSecrets: true, SupportsPreview: true}, nil
}

// autonamed lists the property each type names itself with when the program does not.
var autonamed = map[string]string{
	"aws:s3/bucketV2:BucketV2":                "bucket",
	"aws:iam/role:Role":                       "name",
	"aws:iam/instanceProfile:InstanceProfile": "name",
	"aws:iam/rolePolicy:RolePolicy":           "name",
	"aws:ec2/securityGroup:SecurityGroup":     "name",
}

// Check fills in autonames, keeping the one a resource already has, as the AWS provider does:
// the name is in the state before the resource is created.
func (p *Provider) Check(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	news, err := unmarshal(req.GetNews())
	if err != nil {
		return nil, err
	}
	if prop, ok := autonamed[req.GetType()]; ok {
		key := resource.PropertyKey(prop)
		if v, set := news[key]; !set || v.IsNull() {
			olds, _ := unmarshal(req.GetOlds())
			if old, had := olds[key]; had && old.IsString() {
				news[key] = old
			} else {
				news[key] = resource.NewProperty(strings.ToLower(req.GetName()) + "-" + randomHex(7))
			}
		}
	}
	inputs, err := marshal(news)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.CheckResponse{Inputs: inputs}, nil
}

// replaceKeys are the inputs whose change replaces a resource, per type: AWS's ForceNew
// properties for the types the program uses.
var replaceKeys = map[string][]string{
	"aws:ec2/instance:Instance":                              {"ami", "subnetId", "availabilityZone", "instanceMarketOptions", "keyName", "userDataBase64"},
	"aws:ebs/volume:Volume":                                  {"availabilityZone", "snapshotId", "encrypted", "kmsKeyId", "outpostArn"},
	"aws:ec2/volumeAttachment:VolumeAttachment":              {"deviceName", "instanceId", "volumeId"},
	"aws:s3/bucketV2:BucketV2":                               {"bucket"},
	"aws:iam/role:Role":                                      {"name"},
	"aws:iam/rolePolicy:RolePolicy":                          {"name", "role"},
	"aws:iam/instanceProfile:InstanceProfile":                {"name"},
	"aws:ssm/parameter:Parameter":                            {"name"},
	"aws:cloudwatch/logGroup:LogGroup":                       {"name"},
	"aws:ec2/vpc:Vpc":                                        {"cidrBlock"},
	"aws:ec2/subnet:Subnet":                                  {"vpcId", "cidrBlock", "availabilityZone"},
	"aws:ec2/securityGroup:SecurityGroup":                    {"name", "vpcId", "description"},
	"aws:ec2/routeTable:RouteTable":                          {"vpcId"},
	"aws:ec2/routeTableAssociation:RouteTableAssociation":    {"subnetId"},
	"aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": {"bucket"},
	"aws:s3/bucketOwnershipControls:BucketOwnershipControls": {"bucket"},
	"aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2": {"bucket"},
	"aws:s3/bucketVersioningV2:BucketVersioningV2":                                               {"bucket"},
	"aws:s3/bucketLifecycleConfigurationV2:BucketLifecycleConfigurationV2":                       {"bucket"},
	"aws:s3/bucketPolicy:BucketPolicy":                                                           {"bucket"},
	"sim:index:Thing":                                                                            {"replaceKey"},
	"tls:index/privateKey:PrivateKey":                                                            {"algorithm", "ecdsaCurve", "rsaBits"},
	// pulumi-command replaces a command when its triggers change; a changed create runs again.
	"command:remote:Command": {"triggers"},
}

// Diff compares inputs; a change to a replace key replaces the resource.
func (p *Provider) Diff(_ context.Context, req *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	olds, err := unmarshal(req.GetOldInputs())
	if err != nil {
		return nil, err
	}
	if len(olds) == 0 {
		if olds, err = unmarshal(req.GetOlds()); err != nil {
			return nil, err
		}
	}
	news, err := unmarshal(req.GetNews())
	if err != nil {
		return nil, err
	}
	var diffs, replaces []string
	keys := map[resource.PropertyKey]bool{}
	for k := range olds {
		keys[k] = true
	}
	for k := range news {
		keys[k] = true
	}
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		if slices.Contains(req.GetIgnoreChanges(), string(k)) {
			continue
		}
		o, n := olds[k], news[k]
		if n.ContainsUnknowns() || !o.DeepEquals(n) {
			diffs = append(diffs, string(k))
			if slices.Contains(replaceKeys[req.GetType()], string(k)) {
				replaces = append(replaces, string(k))
			}
		}
	}
	changes := pulumirpc.DiffResponse_DIFF_NONE
	if len(diffs) > 0 {
		changes = pulumirpc.DiffResponse_DIFF_SOME
	}
	return &pulumirpc.DiffResponse{Changes: changes, Diffs: diffs, Replaces: replaces}, nil
}

func randomHex(n int) string {
	b := make([]byte, (n+1)/2)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)[:n]
}

// outputs computes a new resource's id and outputs from its inputs, as the provider would.
func (p *Provider) outputs(typ string, inputs resource.PropertyMap) (string, resource.PropertyMap) {
	out := inputs.Copy()
	var id string
	switch typ {
	case "aws:s3/bucketV2:BucketV2":
		id = str(inputs, "bucket")
		out["arn"] = resource.NewProperty("arn:aws:s3:::" + id)
	case "aws:iam/role:Role":
		id = str(inputs, "name")
		out["arn"] = resource.NewProperty("arn:aws:iam::" + Account + ":role/" + id)
	case "aws:iam/instanceProfile:InstanceProfile":
		id = str(inputs, "name")
		out["arn"] = resource.NewProperty("arn:aws:iam::" + Account + ":instance-profile/" + id)
	case "aws:iam/rolePolicy:RolePolicy":
		id = str(inputs, "role") + ":" + str(inputs, "name")
	case "aws:ssm/parameter:Parameter", "aws:cloudwatch/logGroup:LogGroup":
		id = str(inputs, "name")
	case "aws:ec2/instance:Instance":
		id = "i-" + randomHex(17)
		out["privateIp"] = resource.NewProperty("10.42.0." + fmt.Sprint(10+time.Now().Nanosecond()%200))
	}
	if strings.HasPrefix(typ, "aws:s3/bucket") && typ != "aws:s3/bucketV2:BucketV2" {
		id = str(inputs, "bucket")
	}
	if id == "" {
		if prefix, ok := awsmock.IDPrefixes[typ]; ok {
			id = prefix + randomHex(17)
		} else {
			id = strings.ToLower(typ[strings.LastIndex(typ, ":")+1:]) + "-" + randomHex(12)
		}
	}
	if given := readControl().IDs[typ]; given != "" {
		id = given
	}
	if _, ok := out["arn"]; !ok && p.pkg == "aws" {
		service := strings.SplitN(strings.SplitN(typ, ":", 3)[1], "/", 2)[0]
		out["arn"] = resource.NewProperty(fmt.Sprintf("arn:aws:%s:me-central-1:%s:%s", service, Account, id))
	}
	return id, out
}

// tagsOf returns a resource's tags, unwrapped, for the cloud file.
func tagsOf(inputs resource.PropertyMap) map[string]any {
	v := unwrap(inputs["tags"])
	if !v.IsObject() {
		return nil
	}
	return plain(v.ObjectValue())
}

// plain turns properties into JSON-friendly values, secrets shown as "[secret]" so the cloud file
// never holds one.
func plain(m resource.PropertyMap) map[string]any {
	return m.MapRepl(nil, func(v resource.PropertyValue) (any, bool) {
		if v.IsSecret() {
			return "[secret]", true
		}
		if v.IsComputed() || v.IsOutput() {
			return "[unknown]", true
		}
		return nil, false
	})
}

// Create creates the resource in the simulated cloud and only then answers, as AWS does: a
// process killed in between leaves the resource behind, for the finder to find.
func (p *Provider) Create(_ context.Context, req *pulumirpc.CreateRequest) (*pulumirpc.CreateResponse, error) {
	inputs, err := unmarshal(req.GetProperties())
	if err != nil {
		return nil, err
	}
	typ := req.GetType()
	if typ == "" {
		typ = string(resource.URN(req.GetUrn()).Type())
	}
	if req.GetPreview() {
		props, err := marshal(inputs)
		return &pulumirpc.CreateResponse{Properties: props}, err
	}
	if err := obey("create", req.GetUrn()); err != nil {
		return nil, err
	}
	if typ == InstanceType {
		if it := fmt.Sprint(inputs["instanceType"].V); slices.Contains(readControl().NoCapacity, it) {
			return nil, fmt.Errorf("creating EC2 Instance: InsufficientInstanceCapacity: We currently do not have sufficient "+
				"%s capacity in the Availability Zone you requested (%v)", it, inputs["availabilityZone"].V)
		}
	}
	id, out := p.outputs(typ, inputs)
	if err := p.act(typ, "create", inputs, out); err != nil {
		return nil, err
	}
	err = Change(p.cloud, func(c *Cloud) error {
		c.Resources[Key(typ, id)] = Resource{
			ID: id, Package: p.pkg, Type: typ, URN: req.GetUrn(),
			Tags: tagsOf(inputs), Inputs: plain(inputs), Outputs: plain(out), Created: time.Now(),
		}
		c.record("create", typ, req.GetUrn(), id)
		return nil
	})
	if err != nil {
		return nil, err
	}
	props, err := marshal(out)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.CreateResponse{Id: id, Properties: props}, nil
}

// Read returns what the cloud holds: a resource that is gone reads back with an empty id.
func (p *Provider) Read(_ context.Context, req *pulumirpc.ReadRequest) (*pulumirpc.ReadResponse, error) {
	if err := obey("read", req.GetUrn()); err != nil {
		return nil, err
	}
	c, err := Load(p.cloud)
	if err != nil {
		return nil, err
	}
	key := Key(string(resource.URN(req.GetUrn()).Type()), req.GetId())
	recorded, ok := c.Resources[key]
	if !ok {
		return &pulumirpc.ReadResponse{}, nil
	}
	// The cloud file holds no secrets: answer with what the engine already has, so secrets stay.
	props := req.GetProperties()
	inputs := req.GetInputs()
	if len(props.GetFields()) == 0 {
		// An import: only the id is known. Rebuild from the recorded inputs.
		if props, err = marshal(resource.NewPropertyMapFromMap(recorded.Outputs)); err != nil {
			return nil, err
		}
		if inputs, err = marshal(resource.NewPropertyMapFromMap(recorded.Inputs)); err != nil {
			return nil, err
		}
	}
	return &pulumirpc.ReadResponse{Id: req.GetId(), Properties: props, Inputs: inputs}, nil
}

// Update changes the resource in place.
func (p *Provider) Update(_ context.Context, req *pulumirpc.UpdateRequest) (*pulumirpc.UpdateResponse, error) {
	news, err := unmarshal(req.GetNews())
	if err != nil {
		return nil, err
	}
	if req.GetPreview() {
		props, err := marshal(news)
		return &pulumirpc.UpdateResponse{Properties: props}, err
	}
	if err := obey("update", req.GetUrn()); err != nil {
		return nil, err
	}
	olds, err := unmarshal(req.GetOlds())
	if err != nil {
		return nil, err
	}
	out := olds.Copy()
	maps.Copy(out, news)
	if err := p.act(string(resource.URN(req.GetUrn()).Type()), "update", news, out); err != nil {
		return nil, err
	}
	key := Key(string(resource.URN(req.GetUrn()).Type()), req.GetId())
	err = Change(p.cloud, func(c *Cloud) error {
		r, ok := c.Resources[key]
		if !ok {
			return fmt.Errorf("simulated update of %s: %s does not exist", req.GetUrn(), req.GetId())
		}
		r.Tags, r.Inputs, r.Outputs = tagsOf(news), plain(news), plain(out)
		c.Resources[key] = r
		c.record("update", r.Type, req.GetUrn(), req.GetId())
		return nil
	})
	if err != nil {
		return nil, err
	}
	props, err := marshal(out)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.UpdateResponse{Properties: props}, nil
}

// Delete removes the resource from the cloud.
func (p *Provider) Delete(_ context.Context, req *pulumirpc.DeleteRequest) (*pbempty.Empty, error) {
	if err := obey("delete", req.GetUrn()); err != nil {
		return nil, err
	}
	typ := string(resource.URN(req.GetUrn()).Type())
	olds, err := unmarshal(req.GetOldInputs())
	if err != nil {
		return nil, err
	}
	state, err := unmarshal(req.GetProperties())
	if err != nil {
		return nil, err
	}
	maps.Copy(state, olds) // the inputs, and the outputs a delete command may read
	if err := p.act(typ, "delete", state, nil); err != nil {
		return nil, err
	}
	err = Change(p.cloud, func(c *Cloud) error {
		// A volume deleted with finalSnapshot leaves a snapshot carrying its tags, as AWS does.
		if r, ok := c.Resources[Key(typ, req.GetId())]; ok && r.Type == "aws:ebs/volume:Volume" && r.Inputs["finalSnapshot"] == true {
			tags := map[string]string{}
			for k, v := range r.Tags {
				tags[k] = fmt.Sprint(v)
			}
			size, _ := r.Inputs["size"].(float64)
			c.Snapshots["snap-"+randomHex(17)] = Snapshot{Tags: tags, SizeGB: int(size)}
		}
		delete(c.Resources, Key(typ, req.GetId()))
		c.record("delete", typ, req.GetUrn(), req.GetId())
		return nil
	})
	return &pbempty.Empty{}, err
}

// Cancel is a no-op: operations end on their own.
func (p *Provider) Cancel(context.Context, *pbempty.Empty) (*pbempty.Empty, error) {
	return &pbempty.Empty{}, nil
}
