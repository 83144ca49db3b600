package main

import (
	"fmt"
	"io"

	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// changeCounts tallies changes by operation.
type changeCounts struct{ create, update, delete int }

func countChanges(changes []*sdnv1.Change) changeCounts {
	var c changeCounts
	for _, ch := range changes {
		switch ch.GetOp() {
		case sdnv1.ChangeOp_CHANGE_OP_CREATE:
			c.create++
		case sdnv1.ChangeOp_CHANGE_OP_UPDATE:
			c.update++
		case sdnv1.ChangeOp_CHANGE_OP_DELETE:
			c.delete++
		}
	}
	return c
}

// opSymbol is terraform's marker for an operation.
func opSymbol(op sdnv1.ChangeOp) string {
	switch op {
	case sdnv1.ChangeOp_CHANGE_OP_CREATE:
		return "+"
	case sdnv1.ChangeOp_CHANGE_OP_UPDATE:
		return "~"
	case sdnv1.ChangeOp_CHANGE_OP_DELETE:
		return "-"
	}
	return "?"
}

// writeChanges prints one line per change in the server's order, e.g.
// "+ network proj1", each followed by its details indented by four spaces.
func writeChanges(w io.Writer, changes []*sdnv1.Change) {
	for _, ch := range changes {
		line := opSymbol(ch.GetOp()) + " " + ch.GetKind()
		// There is one cluster; its name says nothing.
		if ch.GetName() != "" && model.Kind(ch.GetKind()) != model.KindCluster {
			line += " " + ch.GetName()
		}
		fmt.Fprintln(w, line)
		for _, d := range ch.GetDetails() {
			fmt.Fprintln(w, "    "+d)
		}
	}
}

// writePlan prints a dry-run Apply's response like `terraform plan`.
func writePlan(w io.Writer, resp *sdnv1.ApplyResponse) {
	if len(resp.GetChanges()) == 0 {
		fmt.Fprintf(w, "No changes. The cluster matches the files (revision %d).\n", resp.GetRevision())
		return
	}
	writeChanges(w, resp.GetChanges())
	c := countChanges(resp.GetChanges())
	fmt.Fprintf(w, "\nPlan: %d to create, %d to update, %d to delete.\n", c.create, c.update, c.delete)
}

// writeApplied prints a committed Apply's response.
func writeApplied(w io.Writer, resp *sdnv1.ApplyResponse) {
	if len(resp.GetChanges()) == 0 {
		fmt.Fprintf(w, "No changes. The cluster matches the files (revision %d).\n", resp.GetRevision())
		return
	}
	writeChanges(w, resp.GetChanges())
	c := countChanges(resp.GetChanges())
	fmt.Fprintf(w, "\nApplied at revision %d: %d created, %d updated, %d deleted.\n",
		resp.GetRevision(), c.create, c.update, c.delete)
}

// count renders "1 network", "3 networks".
func count(n int, noun string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", noun)
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
