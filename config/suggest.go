package config

import (
	"reflect"
	"strings"
)

// movedKeys names the new home of a key an older kojibot read: such a key
// is refused, and the message says where it went.
var movedKeys = map[string]string{
	"irc.user_rate":  "commands.user_rate, which limits callers on every transport",
	"irc.user_burst": "commands.user_burst, which limits callers on every transport",
}

// unknownKey reports the key at path as unknown, suggesting the key of
// its section it most likely meant.
func unknownKey(path string) *KeyError {
	ke := &KeyError{Key: path, Problem: "unknown key"}
	if moved, ok := movedKeys[strings.ToLower(path)]; ok {
		ke.Problem += " (it has moved: use " + moved + ")"
		return ke
	}
	parent := parentOf(path)
	section := typeAt(parent)
	if section == nil || section.Kind() != reflect.Struct {
		return ke
	}
	var keys []string
	for i := range section.NumField() {
		keys = append(keys, tagName(section.Field(i)))
	}
	if best := closest(strings.TrimPrefix(path[len(parent):], "."), keys); best != "" {
		ke.Problem += " (did you mean " + joinKey(parent, best) + "?)"
	}
	return ke
}

// closest returns the candidate nearest to word, if it is near enough to be
// a likely typo of it, else "".
func closest(word string, candidates []string) string {
	best, bestDist := "", 3
	for _, c := range candidates {
		limit := 2
		if len(c) <= 4 {
			limit = 1
		}
		if d := EditDistance(word, c); d <= limit && d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

// EditDistance is the Levenshtein distance between a and b, in bytes. It
// drives every "did you mean" in kojibot: configuration keys here, command
// and host names in the commands package.
func EditDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
