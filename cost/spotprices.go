package cost

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// SpotRow is the Spot price of an instance type in one zone: the price in force now, and the
// median and maximum of the last 7 days.
type SpotRow struct {
	InstanceType string    `json:"instanceType"`
	Zone         string    `json:"zone"`
	Current      float64   `json:"current"`
	CurrentSince time.Time `json:"currentSince"`
	// Median and Max are over the Samples prices of the last 7 days (the one in force at their
	// start included); 0 samples when the price has not changed for longer than that.
	Median  float64 `json:"median"`
	Max     float64 `json:"max"`
	Samples int     `json:"samples"`
	// OnDemand is the type's on-demand price in the region, 0 when it could not be had.
	OnDemand float64 `json:"onDemand,omitempty"`
}

// key orders rows cheapest first: by the 7-day median, then the current price; rows without a
// recent price last.
func (r SpotRow) key() float64 {
	if r.Samples == 0 {
		return r.Current + 1e6
	}
	return r.Median
}

// SpotPrices returns, for each instance type and zone of region with a Spot price, the current
// price, the 7-day median and maximum and the on-demand price, cheapest first. What cannot be had
// (a type with no Spot price, an on-demand price the Price List does not give) is a problem line.
func (e *Estimator) SpotPrices(ctx context.Context, region string, types []string) ([]SpotRow, []string, error) {
	now := time.Now
	if e.Now != nil {
		now = e.Now
	}
	since := now().Add(-7 * 24 * time.Hour)
	instanceTypes := make([]ec2types.InstanceType, len(types))
	for i, t := range types {
		instanceTypes[i] = ec2types.InstanceType(t)
	}
	pages := ec2.NewDescribeSpotPriceHistoryPaginator(e.EC2, &ec2.DescribeSpotPriceHistoryInput{
		InstanceTypes: instanceTypes, ProductDescriptions: []string{"Linux/UNIX"}, StartTime: aws.Time(since), EndTime: aws.Time(now()),
	})
	type series struct {
		row    SpotRow
		recent []float64
	}
	byKey := map[string]*series{}
	priced := map[string]bool{} // the types with any price
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("the Spot price history of %v in %s: %w", types, region, err)
		}
		for _, h := range page.SpotPriceHistory {
			v, perr := strconv.ParseFloat(aws.ToString(h.SpotPrice), 64)
			if perr != nil || h.Timestamp == nil {
				continue
			}
			priced[string(h.InstanceType)] = true
			k := string(h.InstanceType) + " " + aws.ToString(h.AvailabilityZone)
			s := byKey[k]
			if s == nil {
				s = &series{row: SpotRow{InstanceType: string(h.InstanceType), Zone: aws.ToString(h.AvailabilityZone)}}
				byKey[k] = s
			}
			if h.Timestamp.After(s.row.CurrentSince) {
				s.row.Current, s.row.CurrentSince = v, h.Timestamp.UTC()
			}
			if !h.Timestamp.Before(since.Add(-24 * time.Hour)) {
				s.recent = append(s.recent, v)
			}
		}
	}
	var problems []string
	onDemand := map[string]float64{}
	for _, t := range types {
		if !priced[t] {
			problems = append(problems, fmt.Sprintf("no Spot price of %s in %s: the type may not exist there", t, region))
			continue
		}
		hourly, err := e.price(ctx, "AmazonEC2", region, map[string]string{"instanceType": t, "operatingSystem": "Linux",
			"tenancy": "Shared", "preInstalledSw": "NA", "capacitystatus": "Used"}, nil)
		if err != nil {
			problems = append(problems, "on-demand price of "+t+": "+err.Error())
		}
		onDemand[t] = hourly
	}
	rows := make([]SpotRow, 0, len(byKey))
	for _, s := range byKey {
		s.row.Samples = len(s.recent)
		if len(s.recent) > 0 {
			s.row.Median, s.row.Max = medianMax(s.recent)
		}
		s.row.OnDemand = onDemand[s.row.InstanceType]
		rows = append(rows, s.row)
	}
	slices.SortFunc(rows, func(a, b SpotRow) int {
		return cmp.Or(cmp.Compare(a.key(), b.key()), cmp.Compare(a.Current, b.Current), cmp.Compare(a.InstanceType, b.InstanceType), cmp.Compare(a.Zone, b.Zone))
	})
	return rows, problems, nil
}

// medianMax returns the median and the maximum of prices, which it sorts.
func medianMax(prices []float64) (median, peak float64) {
	slices.Sort(prices)
	median = prices[len(prices)/2]
	if len(prices)%2 == 0 {
		median = (prices[len(prices)/2-1] + prices[len(prices)/2]) / 2
	}
	return median, prices[len(prices)-1]
}
