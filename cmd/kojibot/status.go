package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/fedora-infra/kojibot/commands/state"
	"github.com/fedora-infra/kojibot/config"
)

// runStatus prints what the state store says of the kojibot processes
// sharing it (the leader, the standbys, the term, the others) and its open
// journal records, changing nothing; it returns the exit status.
func runStatus(ctx context.Context, cfg *config.Config, stdout, stderr io.Writer) int {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	st, err := state.Inspect(ctx, cfg.State.Dir, cfg.State.DSN.Reveal())
	if err != nil {
		fmt.Fprintln(stderr, "error:", err)
		return 1
	}
	printStatus(stdout, st, time.Now())
	return 0
}

// printStatus writes st for the operators.
func printStatus(w io.Writer, st state.Status, now time.Time) {
	since := func(t time.Time) string {
		return t.UTC().Format(time.RFC3339) + " (" + now.Sub(t).Round(time.Second).String() + " ago)"
	}
	switch l := st.Leader; {
	case l == nil:
		fmt.Fprintln(w, "leader: none (a single kojibot, or none has led yet)")
	case l.Held:
		fmt.Fprintf(w, "leader: %s, since %s\n", l.Holder, since(l.Since))
	default:
		fmt.Fprintf(w, "leader: none at the moment (the last, %s, is gone; a standby takes over)\n", l.Holder)
	}
	if st.Leader != nil {
		fmt.Fprintf(w, "term: %d\n", st.Leader.Term)
	}
	standbys := st.Standbys()
	if len(standbys) == 0 {
		fmt.Fprintln(w, "standbys: none")
	} else {
		fmt.Fprintln(w, "standbys:")
		for _, p := range standbys {
			fmt.Fprintf(w, "  %s, up since %s\n", p.Holder, since(p.Started))
		}
	}
	var others []state.Process
	for _, p := range st.Processes {
		if p.Role != state.RoleStandby && p.Role != state.RoleLeader {
			others = append(others, p)
		}
	}
	if len(others) > 0 {
		fmt.Fprintln(w, "other kojibot processes (exec, or a run on its own):")
		for _, p := range others {
			name := p.Holder
			if name == "" {
				name = fmt.Sprintf("pid %d", p.PID)
			}
			fmt.Fprintf(w, "  %s, up since %s\n", name, since(p.Started))
		}
	}
	if len(st.Open) == 0 {
		fmt.Fprintln(w, "open journal records: none")
		return
	}
	fmt.Fprintf(w, "open journal records: %d\n", len(st.Open))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  id\thost\tkind\tname\tjob\towner\topened\tpid")
	for _, e := range st.Open {
		fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%s\t%s\t%s\t%d\n", e.ID, e.Host, e.Kind, e.Name, e.Job, e.Owner, e.Opened.UTC().Format(time.RFC3339), e.PID)
	}
	tw.Flush()
}
