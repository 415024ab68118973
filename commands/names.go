package commands

import (
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/fedora-infra/kojibot/config"
)

// ResolveName finds the one name in names that query means: the exact name
// (case-insensitive), else the name of which query is a leading run of
// whole labels (`ppc3` or `ppc3.fedora` for ppc3.fedora.redhat.com) when
// exactly one has it. An ambiguous or unknown query is a UserError listing
// the closest candidates.
func ResolveName(what, query string, names []string) (string, error) {
	q := strings.ToLower(query)
	var byLabel []string
	for _, n := range names {
		ln := strings.ToLower(n)
		if ln == q {
			return n, nil
		}
		if q != "" && !strings.HasSuffix(q, ".") && strings.HasPrefix(ln, q+".") {
			byLabel = append(byLabel, n)
		}
	}
	switch len(byLabel) {
	case 1:
		return byLabel[0], nil
	case 0:
		msg := fmt.Sprintf("unknown %s %s", what, quoteShort(query))
		if near := closest(q, names, 3); len(near) > 0 {
			msg += "; closest: " + strings.Join(near, ", ")
		}
		return "", Userf("%s", msg)
	}
	sort.Strings(byLabel)
	return "", Userf("ambiguous %s %s: it could be %s; give the full name", what, quoteShort(query), strings.Join(byLabel, ", "))
}

// MatchGlob returns the names matching a shell pattern, tried against the
// full name and against its first label.
func MatchGlob(pattern string, names []string) []string {
	p := strings.ToLower(pattern)
	var out []string
	for _, n := range names {
		ln := strings.ToLower(n)
		label, _, _ := strings.Cut(ln, ".")
		if ok, _ := path.Match(p, ln); ok {
			out = append(out, n)
		} else if ok, _ := path.Match(p, label); ok {
			out = append(out, n)
		}
	}
	return out
}

// closest returns up to limit names nearest to q by edit distance (against
// the name or its first label), nearest first; names too far are left out.
func closest(q string, names []string, limit int) []string {
	type cand struct {
		name string
		dist int
	}
	var cands []cand
	for _, n := range names {
		ln := strings.ToLower(n)
		label, _, _ := strings.Cut(ln, ".")
		d := min(config.EditDistance(q, ln), config.EditDistance(q, label))
		if strings.HasPrefix(ln, q) || strings.Contains(ln, q) && len(q) >= 3 {
			d = min(d, 1)
		}
		if d <= max(2, len(q)/3) {
			cands = append(cands, cand{n, d})
		}
	}
	sort.Slice(cands, func(i, j int) bool {
		if cands[i].dist != cands[j].dist {
			return cands[i].dist < cands[j].dist
		}
		return cands[i].name < cands[j].name
	})
	var out []string
	for i := 0; i < len(cands) && i < limit; i++ {
		out = append(out, cands[i].name)
	}
	return out
}
