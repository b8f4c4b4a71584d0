package ec2spot

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/clawdeploy/clawdeploy/internal/moto"
)

// TestSmallTypesAreEC2s: the instance types refused for their memory are exactly those with less
// than MinMemoryMiB in EC2's DescribeInstanceTypes answer (moto serves its copy of it), each with
// the memory EC2 gives; the default type has enough.
func TestSmallTypesAreEC2s(t *testing.T) {
	t.Parallel()
	m := moto.Start(t)
	client := ec2.NewFromConfig(m.Config())
	pages := ec2.NewDescribeInstanceTypesPaginator(client, &ec2.DescribeInstanceTypesInput{})
	small, all := map[string]int{}, 0
	for pages.HasMorePages() {
		page, err := pages.NextPage(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range page.InstanceTypes {
			all++
			if mib := int(*it.MemoryInfo.SizeInMiB); mib < MinMemoryMiB {
				small[string(it.InstanceType)] = mib
			}
		}
	}
	if all < 500 {
		t.Fatalf("EC2 (moto) described only %d instance types", all)
	}
	for typ, mib := range small {
		if smallTypes[typ] != mib {
			t.Errorf("%s has %d MiB in EC2's answer; smallTypes says %d", typ, mib, smallTypes[typ])
		}
	}
	for typ := range smallTypes {
		if _, ok := small[typ]; !ok {
			t.Errorf("smallTypes lists %s, which EC2 describes with enough memory, or not at all", typ)
		}
	}
	if tooSmall(DefaultInstanceType) != "" {
		t.Errorf("the default instance type %s is refused", DefaultInstanceType)
	}
}

// TestTooSmallSaysWhy: the refusal names the type, its memory and the minimum.
func TestTooSmallSaysWhy(t *testing.T) {
	t.Parallel()
	values := map[string]string{"aws:region": "me-central-1", "openclaw:availability_zone": "me-central-1a", "openclaw:instance_type": "t4g.micro"}
	err := CheckConfig("openclaw", "dev", values, nil)
	for _, want := range []string{"config instance_type must be", "t4g.micro has 1024 MiB of memory", "at least 2048 MiB", `got "t4g.micro"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: want %q", err, want)
		}
	}
}
