// Package cost estimates what an ec2-spot deployment costs a month, for a preview's comment: the
// Spot instance at its price of the last 7 days (EC2 DescribeSpotPriceHistory), the gp3 data and
// root volumes, the snapshots and the backup bucket (AWS Price List GetProducts), and the
// on-demand price beside the Spot one. A price that cannot be had is a line saying why; an
// estimate never fails.
package cost

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/pricing"
	pricingtypes "github.com/aws/aws-sdk-go-v2/service/pricing/types"
)

// HoursPerMonth is AWS's month for prices quoted by the hour.
const HoursPerMonth = 730

// AssumedStateGB is the size of OpenClaw's state the estimates of backups and snapshots assume.
const AssumedStateGB = 1

// Inputs are what a deployment's cost depends on.
type Inputs struct {
	Region, Zone, InstanceType string
	DataVolumeGB, RootVolumeGB int
	// StateGB is the OpenClaw state's size, assumed: the backups and snapshots hold it.
	StateGB float64
	// BackupVersions is how many backups the bucket keeps (the current one and the replaced ones
	// the lifecycle keeps).
	BackupVersions int
}

// Line is one item of an estimate.
type Line struct {
	Item    string  `json:"item"`
	Monthly float64 `json:"monthly"`
	Basis   string  `json:"basis"`
}

// Estimate is a deployment's monthly cost, in USD.
type Estimate struct {
	Lines []Line  `json:"lines"`
	Total float64 `json:"total"`
	// OnDemandMonthly is the instance at its on-demand price, for comparison; 0 when unknown.
	OnDemandMonthly float64 `json:"onDemandMonthly,omitempty"`
	// Problems are the prices that could not be had, one line each.
	Problems []string `json:"problems,omitempty"`
}

// SpotPrices is EC2's spot price history.
type SpotPrices interface {
	DescribeSpotPriceHistory(context.Context, *ec2.DescribeSpotPriceHistoryInput, ...func(*ec2.Options)) (*ec2.DescribeSpotPriceHistoryOutput, error)
}

// PriceList is AWS's Price List Query API.
type PriceList interface {
	GetProducts(context.Context, *pricing.GetProductsInput, ...func(*pricing.Options)) (*pricing.GetProductsOutput, error)
}

// Estimator asks AWS for prices.
type Estimator struct {
	EC2     SpotPrices
	Pricing PriceList
	// Now tells the time; nil means time.Now.
	Now func() time.Time
}

// Estimate prices in.
func (e *Estimator) Estimate(ctx context.Context, in Inputs) *Estimate {
	est := &Estimate{}
	add := func(item string, monthly float64, basis string) {
		est.Lines = append(est.Lines, Line{Item: item, Monthly: monthly, Basis: basis})
		est.Total += monthly
	}
	if median, peak, n, err := e.spot(ctx, in); err != nil {
		est.Problems = append(est.Problems, err.Error())
	} else {
		add("Spot instance", median*HoursPerMonth,
			fmt.Sprintf("%s: median $%.4f/h of %d prices in the last 7 days in %s (max $%.4f/h) × %d h", in.InstanceType, median, n, in.Zone, peak, HoursPerMonth))
	}
	if hourly, err := e.price(ctx, "AmazonEC2", in.Region, map[string]string{"instanceType": in.InstanceType, "operatingSystem": "Linux",
		"tenancy": "Shared", "preInstalledSw": "NA", "capacitystatus": "Used"}, nil); err != nil {
		est.Problems = append(est.Problems, "on-demand price of "+in.InstanceType+": "+err.Error())
	} else {
		est.OnDemandMonthly = hourly * HoursPerMonth
	}
	if gp3, err := e.price(ctx, "AmazonEC2", in.Region, map[string]string{"productFamily": "Storage", "volumeApiName": "gp3"}, nil); err != nil {
		est.Problems = append(est.Problems, "gp3 price: "+err.Error())
	} else {
		add("data volume (gp3)", gp3*float64(in.DataVolumeGB), fmt.Sprintf("%d GiB × $%.4f/GB-month", in.DataVolumeGB, gp3))
		add("root volume (gp3)", gp3*float64(in.RootVolumeGB), fmt.Sprintf("%d GiB × $%.4f/GB-month", in.RootVolumeGB, gp3))
	}
	if snap, err := e.price(ctx, "AmazonEC2", in.Region, map[string]string{"productFamily": "Storage Snapshot"},
		func(attrs map[string]string) bool { return strings.HasSuffix(attrs["usagetype"], "EBS:SnapshotUsage") }); err != nil {
		est.Problems = append(est.Problems, "snapshot price: "+err.Error())
	} else {
		add("snapshots (estimate)", snap*in.StateGB, fmt.Sprintf("about one copy of %.0f GB of state (snapshots are incremental) × $%.4f/GB-month", in.StateGB, snap))
	}
	if s3, err := e.price(ctx, "AmazonS3", in.Region, map[string]string{"storageClass": "General Purpose", "volumeType": "Standard"}, nil); err != nil {
		est.Problems = append(est.Problems, "S3 price: "+err.Error())
	} else {
		gb := in.StateGB * float64(in.BackupVersions)
		add("backup bucket (estimate)", s3*gb, fmt.Sprintf("%d backups kept × %.0f GB of state × $%.4f/GB-month", in.BackupVersions, in.StateGB, s3))
	}
	return est
}

// spot returns the median and the maximum Spot price of the last 7 days, and how many prices.
func (e *Estimator) spot(ctx context.Context, in Inputs) (median, peak float64, n int, err error) {
	now := time.Now
	if e.Now != nil {
		now = e.Now
	}
	since := now().Add(-7 * 24 * time.Hour)
	p := ec2.NewDescribeSpotPriceHistoryPaginator(e.EC2, &ec2.DescribeSpotPriceHistoryInput{
		InstanceTypes: []ec2types.InstanceType{ec2types.InstanceType(in.InstanceType)}, AvailabilityZone: aws.String(in.Zone),
		ProductDescriptions: []string{"Linux/UNIX"}, StartTime: aws.Time(since), EndTime: aws.Time(now()),
	})
	var prices []float64
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return 0, 0, 0, fmt.Errorf("the Spot price of %s in %s: %w", in.InstanceType, in.Zone, err)
		}
		for _, h := range page.SpotPriceHistory {
			v, perr := strconv.ParseFloat(aws.ToString(h.SpotPrice), 64)
			// The history starts with the price in force at StartTime, which may be older.
			if perr == nil && h.Timestamp != nil && !h.Timestamp.Before(since.Add(-24*time.Hour)) {
				prices = append(prices, v)
			}
		}
	}
	if len(prices) == 0 {
		return 0, 0, 0, fmt.Errorf("no Spot price of %s in %s in the last 7 days (DescribeSpotPriceHistory returned none)", in.InstanceType, in.Zone)
	}
	median, peak = medianMax(prices)
	return median, peak, len(prices), nil
}

// price returns the first USD price per unit of the products of service in region that match
// attrs (and keep, when not nil), from the first tier.
func (e *Estimator) price(ctx context.Context, service, region string, attrs map[string]string, keep func(map[string]string) bool) (float64, error) {
	filters := []pricingtypes.Filter{{Type: pricingtypes.FilterTypeTermMatch, Field: aws.String("regionCode"), Value: aws.String(region)}}
	for _, k := range slices.Sorted(maps.Keys(attrs)) {
		filters = append(filters, pricingtypes.Filter{Type: pricingtypes.FilterTypeTermMatch, Field: aws.String(k), Value: aws.String(attrs[k])})
	}
	in := &pricing.GetProductsInput{ServiceCode: aws.String(service), Filters: filters, FormatVersion: aws.String("aws_v1"), MaxResults: aws.Int32(100)}
	for {
		out, err := e.Pricing.GetProducts(ctx, in)
		if err != nil {
			return 0, fmt.Errorf("the Price List API: %w", err)
		}
		for _, doc := range out.PriceList {
			var product struct {
				Product struct {
					Attributes map[string]string `json:"attributes"`
				} `json:"product"`
				Terms struct {
					OnDemand map[string]struct {
						PriceDimensions map[string]struct {
							BeginRange   string            `json:"beginRange"`
							PricePerUnit map[string]string `json:"pricePerUnit"`
						} `json:"priceDimensions"`
					} `json:"OnDemand"`
				} `json:"terms"`
			}
			if json.Unmarshal([]byte(doc), &product) != nil || keep != nil && !keep(product.Product.Attributes) {
				continue
			}
			for _, term := range product.Terms.OnDemand {
				for _, dim := range term.PriceDimensions {
					if dim.BeginRange != "" && dim.BeginRange != "0" {
						continue
					}
					if v, err := strconv.ParseFloat(dim.PricePerUnit["USD"], 64); err == nil && v > 0 {
						return v, nil
					}
				}
			}
		}
		if out.NextToken == nil {
			var terms []string
			for _, k := range slices.Sorted(maps.Keys(attrs)) {
				terms = append(terms, k+"="+attrs[k])
			}
			return 0, fmt.Errorf("the Price List has no %s product in %s with %s", service, region, strings.Join(terms, " "))
		}
		in.NextToken = out.NextToken
	}
}

// NewEstimator returns an estimator on cfg: EC2 in the deployment's region, the Price List in
// us-east-1, where AWS serves it. Endpoints come from cfg, so AWS_ENDPOINT_URL (and
// AWS_ENDPOINT_URL_EC2, AWS_ENDPOINT_URL_PRICING) apply.
func NewEstimator(cfg aws.Config, region string) *Estimator {
	return &Estimator{
		EC2:     ec2.NewFromConfig(cfg, func(o *ec2.Options) { o.Region = region }),
		Pricing: pricing.NewFromConfig(cfg, func(o *pricing.Options) { o.Region = "us-east-1" }),
	}
}
