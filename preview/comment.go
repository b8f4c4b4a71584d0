package preview

import (
	"fmt"
	"slices"
	"strings"

	"github.com/clawdeploy/clawdeploy/cost"
	"github.com/clawdeploy/clawdeploy/prcomment"
	"github.com/clawdeploy/clawdeploy/targets"
)

// Comment renders the preview as the Markdown body of a pull-request comment: the marker, a
// heading, the verdict, the counts, data at risk (first), downtime, access, ignored
// configuration, then the engine's diff in a collapsed block. A body over prcomment.MaxLength
// loses the end of the diff, never the summary, and says where it was cut.
func (r *Result) Comment(project, stack, commit string) string {
	head := prcomment.Marker(project, stack) + "\n" + fmt.Sprintf("### clawdeploy preview: `%s` / `%s`%s\n\n", project, stack, atCommit(commit)) + r.summary()
	return head + r.diffBlock(stack, prcomment.MaxLength-runes(head))
}

// summary is the verdict, the counts and the blocks of risky changes, in Markdown.
func (r *Result) summary() string {
	c := r.Changes
	var b strings.Builder
	icon := map[bool]string{true: "⚠️ ", false: ""}[len(c.Of(targets.RiskData))+len(c.Ignored) > 0]
	fmt.Fprintf(&b, "**%s%s**\n\n", icon, c.Verdict())
	fmt.Fprintf(&b, "| create | update | replace | delete | unchanged |\n|---:|---:|---:|---:|---:|\n| %d | %d | %d | %d | %d |\n\n",
		c.Counts["create"], c.Counts["update"], c.Counts["replace"], c.Counts["delete"], c.Counts["same"])
	if data := c.Of(targets.RiskData); len(data) > 0 || len(c.Ignored) > 0 {
		b.WriteString("#### Data at risk\n\n")
		for _, i := range c.Ignored {
			from := "none"
			if i.From != "" {
				from = "`" + i.From + "`"
			}
			fmt.Fprintf(&b, "- `%s`: %s → `%s` is **ignored** on this stack: %s. Instead, %s.\n", i.Key, from, i.To, i.Reason, i.Instead)
		}
		writeChanges(&b, data)
		b.WriteString("\n")
	}
	if downtime := c.Of(targets.RiskDowntime); len(downtime) > 0 {
		fmt.Fprintf(&b, "#### Downtime\n\nAbout %d minutes until `READY` again.\n\n", c.downtimeMinutes())
		writeChanges(&b, downtime)
		b.WriteString("\n")
	}
	if c.Image != nil {
		fmt.Fprintf(&b, "#### Image\n\n`%s` moved: the stack runs `%s`, the tag points to `%s`.", c.Image.Image, c.Image.Recorded, c.Image.Latest)
		if c.Image.Followed {
			b.WriteString(" This up follows it: an upgrade, with downtime and a pre-upgrade checkpoint.\n\n")
		} else {
			b.WriteString(" Not deployed: `clawdeploy up --refresh-image` upgrades (downtime, pre-upgrade checkpoint).\n\n")
		}
	}
	if access := c.Of(targets.RiskAccess); len(access) > 0 {
		b.WriteString("#### Access\n\n")
		writeChanges(&b, access)
		b.WriteString("\n")
	}
	if len(c.Policies) > 0 {
		fmt.Fprintf(&b, "#### Policies\n\n%d violation(s), %d mandatory.\n\n", len(c.Policies), c.Mandatory())
		for _, p := range c.Policies {
			fmt.Fprintf(&b, "- **%s** `%s/%s` on `%s`: %s\n", p.Enforcement, p.Pack, p.Policy, urnName(p.URN), strings.Join(strings.Fields(p.Message), " "))
		}
		b.WriteString("\n")
	}
	if r.Cost != nil {
		writeCost(&b, r.Cost)
	}
	return b.String()
}

// writeCost is the cost block: a row per item, now and after, the totals and the delta, then
// what each price is based on and what could not be priced.
func writeCost(b *strings.Builder, c *targets.CostComparison) {
	b.WriteString("#### Cost (USD per month)\n\n| item | now | after | delta |\n|---|---:|---:|---:|\n")
	now := map[string]float64{}
	var items []string
	if c.Now != nil {
		for _, l := range c.Now.Lines {
			now[l.Item] = l.Monthly
			items = append(items, l.Item)
		}
	}
	after := map[string]float64{}
	for _, l := range c.Change.Lines {
		after[l.Item] = l.Monthly
		if _, seen := now[l.Item]; !seen {
			items = append(items, l.Item)
		}
	}
	money := func(m map[string]float64, item string) string {
		if v, ok := m[item]; ok {
			return fmt.Sprintf("%.2f", v)
		}
		return "–"
	}
	for _, item := range items {
		delta := "–"
		if _, ok := now[item]; ok || c.Now == nil {
			if _, ok := after[item]; ok {
				delta = fmt.Sprintf("%+.2f", after[item]-now[item])
			}
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s |\n", item, money(now, item), money(after, item), delta)
	}
	nowTotal := "–"
	if c.Now != nil {
		nowTotal = fmt.Sprintf("%.2f", c.Now.Total)
	}
	fmt.Fprintf(b, "| **total** | **%s** | **%.2f** | **%+.2f** |\n\n", nowTotal, c.Change.Total, c.Delta)
	for _, l := range c.Change.Lines {
		fmt.Fprintf(b, "- %s: %s\n", l.Item, l.Basis)
	}
	if c.Change.OnDemandMonthly > 0 {
		fmt.Fprintf(b, "- On demand instead of Spot, for comparison: %.2f a month\n", c.Change.OnDemandMonthly)
	}
	var problems []string
	if c.Now != nil {
		problems = append(problems, c.Now.Problems...)
	}
	for _, p := range c.Change.Problems {
		if !slices.Contains(problems, p) {
			problems = append(problems, p)
		}
	}
	for _, p := range problems {
		fmt.Fprintf(b, "- not priced: %s\n", p)
	}
	fmt.Fprintf(b, "- The backup and snapshot lines assume %d GB of OpenClaw state.\n\n", cost.AssumedStateGB)
}

// diffBlock is the engine's diff, collapsed, in at most room characters: a diff too long loses
// its end, at a line the block names.
func (r *Result) diffBlock(stack string, room int) string {
	const open, closing = "<details><summary>Full diff</summary>\n\n```diff\n", "\n```\n</details>\n"
	diff := strings.TrimRight(r.Diff, "\n")
	room -= runes(open) + runes(closing)
	if runes(diff) > room {
		total := strings.Count(diff, "\n") + 1
		note := "\n… the diff is cut here, at line %d of %d: GitHub takes at most 65,536 characters. `clawdeploy preview --stack %s` prints all of it."
		room -= runes(fmt.Sprintf(note, total, total, stack))
		kept := string([]rune(diff)[:max(room, 0)])
		if i := strings.LastIndexByte(kept, '\n'); i >= 0 {
			kept = kept[:i]
		} else {
			kept = ""
		}
		diff = kept + fmt.Sprintf(note, strings.Count(kept, "\n")+1, total, stack)
	}
	return open + diff + closing
}

// Stack is one stack's preview, in a fleet's.
type Stack struct {
	Stack  string
	Result *Result
	Err    error
}

// FleetComment renders the previews of several stacks as one pull-request comment: how many
// would replace their instance and how many put data at risk, a row per stack, and each
// stack's details collapsed, their diffs sharing what room GitHub's limit leaves.
func FleetComment(project, commit string, previews []Stack) string {
	replacing, atRisk, failed := 0, 0, 0
	var table strings.Builder
	table.WriteString("| stack | verdict | create | update | replace | delete |\n|---|---|---:|---:|---:|---:|\n")
	for _, p := range previews {
		if p.Err != nil {
			failed++
			fmt.Fprintf(&table, "| `%s` | ❌ preview failed: %s | | | | |\n", p.Stack, oneLine(p.Err.Error()))
			continue
		}
		c := p.Result.Changes
		if c.replacesHost() {
			replacing++
		}
		if len(c.Of(targets.RiskData))+len(c.Ignored) > 0 {
			atRisk++
		}
		fmt.Fprintf(&table, "| `%s` | %s | %d | %d | %d | %d |\n", p.Stack, c.Verdict(),
			c.Counts["create"], c.Counts["update"], c.Counts["replace"], c.Counts["delete"])
	}
	var b strings.Builder
	b.WriteString(prcomment.Marker(project, "*") + "\n")
	fmt.Fprintf(&b, "### clawdeploy preview: `%s`, %d stacks%s\n\n", project, len(previews), atCommit(commit))
	fmt.Fprintf(&b, "**%d of %d stacks would replace their instance, %d put data at risk", replacing, len(previews), atRisk)
	if failed > 0 {
		fmt.Fprintf(&b, ", %d failed to preview", failed)
	}
	b.WriteString("**\n\n" + table.String() + "\n")
	var details []string
	for _, p := range previews {
		if p.Err == nil {
			details = append(details, fmt.Sprintf("<details><summary><code>%s</code>: %s</summary>\n\n%s", p.Stack, p.Result.Changes.Verdict(), p.Result.summary()))
		}
	}
	room := prcomment.MaxLength - runes(b.String())
	for _, d := range details {
		room -= runes(d) + runes("</details>\n")
	}
	i := 0
	for _, p := range previews {
		if p.Err != nil {
			continue
		}
		share := max(room/max(len(details)-i, 1), 0)
		block := p.Result.diffBlock(p.Stack, share)
		room -= runes(block)
		b.WriteString(details[i] + block + "</details>\n")
		i++
	}
	return b.String()
}

func (c *Changes) replacesHost() bool {
	return slices.ContainsFunc(c.Resources, func(r ResourceChange) bool { return r.ReplacesHost })
}

func atCommit(commit string) string {
	if commit == "" {
		return ""
	}
	return fmt.Sprintf(" at `%s`", shortCommit(commit))
}

func runes(s string) int { return len([]rune(s)) }

func oneLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return strings.ReplaceAll(s, "|", "\\|")
}

func writeChanges(b *strings.Builder, changes []ResourceChange) {
	for _, r := range changes {
		fmt.Fprintf(b, "- **%s** `%s` (`%s`): %s\n", r.Op, urnName(r.URN), r.Type, r.Reason)
	}
}

// urnName is the last part of a URN: the resource's name.
func urnName(urn string) string {
	if i := strings.LastIndex(urn, "::"); i >= 0 {
		return urn[i+2:]
	}
	return urn
}

func shortCommit(c string) string {
	if len(c) > 12 {
		return c[:12]
	}
	return c
}
