package cost_test

import (
	"context"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/pricing"

	"github.com/clawdeploy/clawdeploy/cost"
	"github.com/clawdeploy/clawdeploy/internal/moto"
	"github.com/clawdeploy/clawdeploy/internal/pricingfake"
)

// catalog is the part of the Price List an estimate reads, for us-east-1, at plausible prices.
var catalog = []pricingfake.Product{
	{Service: "AmazonEC2", Unit: "Hrs", USD: "0.0168000000", Attributes: map[string]string{"regionCode": "us-east-1", "instanceType": "t4g.small",
		"operatingSystem": "Linux", "tenancy": "Shared", "preInstalledSw": "NA", "capacitystatus": "Used", "productFamily": "Compute Instance"}},
	{Service: "AmazonEC2", Unit: "GB-Mo", USD: "0.0800000000", Attributes: map[string]string{"regionCode": "us-east-1", "productFamily": "Storage", "volumeApiName": "gp3"}},
	{Service: "AmazonEC2", Unit: "GB-Mo", USD: "0.0125000000", Attributes: map[string]string{"regionCode": "us-east-1", "productFamily": "Storage Snapshot", "usagetype": "EBS:SnapshotArchiveStorage"}},
	{Service: "AmazonEC2", Unit: "GB-Mo", USD: "0.0500000000", Attributes: map[string]string{"regionCode": "us-east-1", "productFamily": "Storage Snapshot", "usagetype": "EBS:SnapshotUsage"}},
	{Service: "AmazonS3", Unit: "GB-Mo", USD: "0.0230000000", Attributes: map[string]string{"regionCode": "us-east-1", "storageClass": "General Purpose", "volumeType": "Standard"}},
}

var inputs = cost.Inputs{Region: "us-east-1", Zone: "us-east-1a", InstanceType: "t4g.small", DataVolumeGB: 20, RootVolumeGB: 20, StateGB: 1, BackupVersions: 1008}

// recentSpot is a fake of EC2's spot price history with prices of the last days, newest first,
// as EC2 returns them.
type recentSpot struct{ prices []string }

func (r recentSpot) DescribeSpotPriceHistory(_ context.Context, in *ec2.DescribeSpotPriceHistoryInput, _ ...func(*ec2.Options)) (*ec2.DescribeSpotPriceHistoryOutput, error) {
	out := &ec2.DescribeSpotPriceHistoryOutput{}
	for i, p := range r.prices {
		out.SpotPriceHistory = append(out.SpotPriceHistory, ec2types.SpotPrice{SpotPrice: aws.String(p), AvailabilityZone: in.AvailabilityZone,
			InstanceType: in.InstanceTypes[0], Timestamp: aws.Time(in.EndTime.Add(-time.Duration(i) * 12 * time.Hour))})
	}
	return out, nil
}

func near(a, b float64) bool { return math.Abs(a-b) < 0.005 }

// TestEstimate prices a deployment with moto's EC2 and the fake Price List: moto's one Spot price
// is from 2006, so the Spot line says there is none in the last 7 days; the volumes, snapshots,
// bucket and on-demand price come from the Price List.
func TestEstimate(t *testing.T) {
	t.Parallel()
	m := moto.Start(t)
	prices := pricingfake.Start(t, catalog...)
	cfg := m.Config()
	e := &cost.Estimator{EC2: ec2.NewFromConfig(cfg), Pricing: pricing.NewFromConfig(cfg, func(o *pricing.Options) { o.BaseEndpoint = aws.String(prices.URL) })}
	est := e.Estimate(t.Context(), inputs)
	if len(est.Problems) != 1 || !strings.Contains(est.Problems[0], "no Spot price of t4g.small in us-east-1a in the last 7 days") {
		t.Errorf("problems %q", est.Problems)
	}
	want := map[string]float64{"data volume (gp3)": 1.6, "root volume (gp3)": 1.6, "snapshots (estimate)": 0.05, "backup bucket (estimate)": 23.184}
	for _, l := range est.Lines {
		if w, ok := want[l.Item]; !ok || !near(l.Monthly, w) {
			t.Errorf("line %+v, want %v", l, w)
		}
		delete(want, l.Item)
	}
	if len(want) != 0 || !near(est.Total, 26.434) || !near(est.OnDemandMonthly, 12.264) {
		t.Errorf("missing %v, total %.3f, on-demand %.3f", want, est.Total, est.OnDemandMonthly)
	}

	// With recent Spot prices: the median and the maximum of the week.
	e.EC2 = recentSpot{prices: []string{"0.0051", "0.0049", "0.0063", "0.0050"}}
	est = e.Estimate(t.Context(), inputs)
	if len(est.Problems) != 0 || est.Lines[0].Item != "Spot instance" || !near(est.Lines[0].Monthly, 0.00505*730) ||
		!strings.Contains(est.Lines[0].Basis, "t4g.small: median $0.0051/h of 4 prices in the last 7 days in us-east-1a (max $0.0063/h)") {
		t.Errorf("spot line %+v, problems %q", est.Lines[0], est.Problems)
	}

	// EC2 unreachable: the Spot line is a line saying why.
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	e.EC2 = ec2.NewFromConfig(cfg, func(o *ec2.Options) { o.BaseEndpoint = aws.String(closed.URL); o.RetryMaxAttempts = 1 })
	est = e.Estimate(t.Context(), inputs)
	if len(est.Problems) != 1 || !strings.Contains(est.Problems[0], "the Spot price of t4g.small in us-east-1a: ") || len(est.Lines) != 4 {
		t.Errorf("EC2 unreachable: lines %+v, problems %q", est.Lines, est.Problems)
	}

	// No Price List access: every price from it is a line saying why, and the estimate goes on.
	prices.Deny()
	est = e.Estimate(t.Context(), inputs)
	if len(est.Problems) != 5 || !strings.Contains(est.Problems[1], "not authorized to perform: pricing:GetProducts") || len(est.Lines) != 0 {
		t.Errorf("denied: lines %+v, problems %q", est.Lines, est.Problems)
	}
}
