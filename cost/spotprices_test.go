package cost_test

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/pricing"

	"github.com/clawdeploy/clawdeploy/cost"
	"github.com/clawdeploy/clawdeploy/internal/pricingfake"
	"github.com/clawdeploy/clawdeploy/internal/spotpricefake"
)

// TestSpotPrices reads a week of Spot prices from the fake of EC2's history (moto's is one price
// of 2006) and on-demand prices from the fake Price List: per type and zone, cheapest first, with
// what could not be had said.
func TestSpotPrices(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	var history []spotpricefake.Price
	for i, p := range []float64{0.0052, 0.0050, 0.0061, 0.0049, 0.0051} {
		history = append(history, spotpricefake.Price{InstanceType: "t4g.small", Zone: "us-east-1a", Price: p, At: now.Add(-time.Duration(i) * day)})
	}
	for i, p := range []float64{0.0048, 0.0047, 0.0090} {
		history = append(history, spotpricefake.Price{InstanceType: "t4g.small", Zone: "us-east-1b", Price: p, At: now.Add(-time.Duration(i)*day - time.Hour)})
	}
	history = append(history,
		spotpricefake.Price{InstanceType: "t4g.medium", Zone: "us-east-1a", Price: 0.0101, At: now.Add(-2 * day)},
		// Set 30 days ago and unchanged since: in force, but no price of the week.
		spotpricefake.Price{InstanceType: "t4g.small", Zone: "us-east-1c", Price: 0.0040, At: now.Add(-30 * day)},
		spotpricefake.Price{InstanceType: "t4g.small", Zone: "us-east-1c", Price: 0.0099, At: now.Add(-40 * day)},
	)
	// A busy zone: 60 prices of the week.
	for i := range 60 {
		history = append(history, spotpricefake.Price{InstanceType: "t4g.small", Zone: "us-east-1d", Price: 0.0070 + float64(i%3)/10000, At: now.Add(-time.Duration(i) * 2 * time.Hour)})
	}
	spot := spotpricefake.Start(t, history...)
	prices := pricingfake.Start(t, catalog...)
	cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")}
	e := &cost.Estimator{
		EC2:     ec2.NewFromConfig(cfg, func(o *ec2.Options) { o.BaseEndpoint = aws.String(spot.URL); o.Region = "us-east-1" }),
		Pricing: pricing.NewFromConfig(cfg, func(o *pricing.Options) { o.BaseEndpoint = aws.String(prices.URL) }),
		Now:     func() time.Time { return now },
	}
	rows, problems, err := e.SpotPrices(t.Context(), "us-east-1", []string{"t4g.small", "t4g.medium", "t4g.nano"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range rows {
		got = append(got, r.InstanceType+" "+r.Zone)
	}
	want := []string{"t4g.small us-east-1b", "t4g.small us-east-1a", "t4g.small us-east-1d", "t4g.medium us-east-1a", "t4g.small us-east-1c"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("rows %v, want cheapest median first: %v", got, want)
	}
	b, a, c := rows[0], rows[1], rows[4]
	if b.Current != 0.0048 || b.Median != 0.0048 || b.Max != 0.0090 || b.Samples != 3 || !near(b.OnDemand, 0.0168) {
		t.Errorf("1b: %+v", b)
	}
	if a.Current != 0.0052 || a.Median != 0.0051 || a.Max != 0.0061 || a.Samples != 5 || !a.CurrentSince.Equal(now) {
		t.Errorf("1a: %+v", a)
	}
	if c.Current != 0.0040 || c.Samples != 0 || c.Median != 0 {
		t.Errorf("1c, unchanged for 30 days: %+v, want the price in force and no sample of the week", c)
	}
	if rows[3].OnDemand != 0 || len(problems) != 2 || !strings.Contains(problems[0], "on-demand price of t4g.medium") ||
		!strings.Contains(problems[1], "no Spot price of t4g.nano in us-east-1: the type may not exist there") {
		t.Errorf("problems %q, medium's on-demand %v", problems, rows[3].OnDemand)
	}
}
