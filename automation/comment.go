package automation

import (
	"fmt"
	"strings"
)

// MaxCommentLength is the longest comment body GitHub accepts, in characters.
const MaxCommentLength = 65536

// CommentMarker is the hidden line that names a comment's project and stack, so that the
// comment can be found and edited by the next preview instead of posting another.
func CommentMarker(project, stack string) string {
	return fmt.Sprintf("<!-- clawdeploy-preview project=%s stack=%s -->", project, stack)
}

// Comment renders the preview as the Markdown body of a pull-request comment: the marker, a
// heading, the verdict, the counts, data at risk (first), downtime, access, ignored
// configuration, then the engine's diff in a collapsed block. A body over MaxCommentLength
// loses the end of the diff, never the summary, and says where it was cut.
func (r *PreviewResult) Comment(project, stack, commit string) string {
	c := r.Changes
	var b strings.Builder
	b.WriteString(CommentMarker(project, stack) + "\n")
	fmt.Fprintf(&b, "### clawdeploy preview: `%s` / `%s`", project, stack)
	if commit != "" {
		fmt.Fprintf(&b, " at `%s`", shortCommit(commit))
	}
	b.WriteString("\n\n")
	icon := map[bool]string{true: "⚠️ ", false: ""}[len(c.Of(RiskData))+len(c.Ignored) > 0]
	fmt.Fprintf(&b, "**%s%s**\n\n", icon, c.Verdict())
	fmt.Fprintf(&b, "| create | update | replace | delete | unchanged |\n|---:|---:|---:|---:|---:|\n| %d | %d | %d | %d | %d |\n\n",
		c.Counts["create"], c.Counts["update"], c.Counts["replace"], c.Counts["delete"], c.Counts["same"])
	if data := c.Of(RiskData); len(data) > 0 || len(c.Ignored) > 0 {
		b.WriteString("#### Data at risk\n\n")
		for _, i := range c.Ignored {
			fmt.Fprintf(&b, "- `%s`: `%s` → `%s` is **ignored** on this stack: %s. Instead, %s.\n", i.Key, i.From, i.To, i.Reason, i.Instead)
		}
		writeChanges(&b, data)
		b.WriteString("\n")
	}
	if downtime := c.Of(RiskDowntime); len(downtime) > 0 {
		fmt.Fprintf(&b, "#### Downtime\n\nAbout %d minutes until `READY` again.\n\n", c.downtimeMinutes())
		writeChanges(&b, downtime)
		b.WriteString("\n")
	}
	if access := c.Of(RiskAccess); len(access) > 0 {
		b.WriteString("#### Access\n\n")
		writeChanges(&b, access)
		b.WriteString("\n")
	}
	summary := b.String()
	const open, closing = "<details><summary>Full diff</summary>\n\n```diff\n", "\n```\n</details>\n"
	diff := strings.TrimRight(r.Diff, "\n")
	room := MaxCommentLength - len([]rune(summary)) - len([]rune(open)) - len([]rune(closing))
	if lines := len([]rune(diff)); lines > room {
		total := strings.Count(diff, "\n") + 1
		note := "\n… the diff is cut here, at line %d of %d: GitHub takes at most 65,536 characters. `clawdeploy preview --stack %s` prints all of it."
		room -= len([]rune(fmt.Sprintf(note, total, total, stack)))
		kept := string([]rune(diff)[:max(room, 0)])
		if i := strings.LastIndexByte(kept, '\n'); i >= 0 {
			kept = kept[:i]
		}
		diff = kept + fmt.Sprintf(note, strings.Count(kept, "\n")+1, total, stack)
	}
	return summary + open + diff + closing
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
