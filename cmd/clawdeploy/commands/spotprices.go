package commands

import (
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/clawdeploy/clawdeploy/automation"
	"github.com/clawdeploy/clawdeploy/runbook"
	"github.com/clawdeploy/clawdeploy/targets"
)

// SpotPrices is the runbook's first step: choose the instance type and the zone by Spot price.
var SpotPrices = &cli.Command{
	Name:      "spot-prices",
	Usage:     "Spot prices of instance types in every zone of a region, cheapest first, and the config lines for the best (" + automation.TargetsWith[targets.DataVolume]() + ")",
	ArgsUsage: " ",
	Description: `For each instance type and zone: the Spot price in force now, the median and
the maximum of the last 7 days (EC2's price history), and the on-demand price
(the AWS Price List) when it can be had; cheapest 7-day median first. Then the
exact "pulumi config set instance_type …" and "availability_zone …" lines for
the best row. With --stack, the zone the stack's data volume is in is marked
(the volume cannot move) and the best row is chosen in it. What cannot be had
(a type with no Spot price there, an on-demand price) is a line, not a failure.
Make: make ec2-spot-prices INSTANCE_TYPES="t4g.small t4g.medium" REGION=me-central-1.
--json: one "spotPrices" event (region, rows[{instanceType, zone, current,
currentSince, median, max, samples, onDemand}], problems, pinnedZone, best,
config: the "pulumi config set" lines),
then the result line.`,
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "instance-types", Usage: `the instance types, separated by spaces or commas ("t4g.small t4g.medium")`},
		regionFlag,
		&cli.StringFlag{Name: stackFlag.Name, Usage: "mark the zone this stack's data volume pins, and take its region"},
	},
	Action: func(cliContext *cli.Context) error {
		stack := cliContext.String(stackFlag.Name)
		if stack != "" {
			if err := automation.CheckStackName(stack); err != nil {
				return err
			}
		}
		types := strings.FieldsFunc(cliContext.String("instance-types"), func(r rune) bool { return r == ' ' || r == ',' })
		return withDriver(cliContext, func(d *automation.Driver) error {
			report, err := runbook.New(d).SpotPrices(cliContext.Context, stack, cliContext.String(regionFlag.Name), types)
			if err == nil {
				if cliContext.Bool("json") {
					printEvent("spotPrices", stack, report)
				} else {
					printSpotPrices(report)
				}
			}
			return finish(cliContext, stack, "spot-prices", nil, err)
		})
	},
}

func printSpotPrices(r *runbook.SpotPriceReport) {
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	_, _ = fmt.Fprintln(w, "TYPE\tZONE\tNOW $/h\t7-DAY MEDIAN\t7-DAY MAX\tON-DEMAND\t")
	price := func(v float64) string {
		if v == 0 {
			return "-"
		}
		return fmt.Sprintf("%.4f", v)
	}
	for _, row := range r.Rows {
		mark := ""
		if row.Zone == r.PinnedZone {
			mark = "(the data volume's zone)"
		}
		median, peak := price(row.Median), price(row.Max)
		if row.Samples == 0 {
			median, peak = "unchanged since "+row.CurrentSince.Format("2006-01-02"), "-"
		}
		_, _ = fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", row.InstanceType, row.Zone, price(row.Current), median, peak, price(row.OnDemand), mark)
	}
	_ = w.Flush()
	for _, p := range r.Problems {
		fmt.Println("note:", p)
	}
	if lines := r.Config; len(lines) > 0 {
		fmt.Println()
		for _, l := range lines {
			fmt.Println(l)
		}
	}
}
