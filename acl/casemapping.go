package acl

import "strings"

// CaseMapping is how an IRC network compares nicks and account names: the
// CASEMAPPING token of its ISUPPORT (005) reply. Only ASCII letters, and
// for rfc1459 the four punctuation pairs, are folded; other characters are
// compared exactly, so that a Kelvin sign (U+212A) never matches "k" the
// way Unicode folding (strings.EqualFold, strings.ToLower) would make it.
type CaseMapping string

// The case mappings kojibot knows. A network that names another one (such
// as rfc7613) is treated as ASCII: two names that only Unicode folding
// would make equal are then different accounts, which fails closed.
const (
	// CaseMappingASCII folds A-Z to a-z.
	CaseMappingASCII CaseMapping = "ascii"
	// CaseMappingRFC1459 also folds []\~ to {}|^; it is IRC's default when
	// the server names none.
	CaseMappingRFC1459 CaseMapping = "rfc1459"
	// CaseMappingStrictRFC1459 folds []\ to {}| but not ~.
	CaseMappingStrictRFC1459 CaseMapping = "strict-rfc1459"
)

// ParseCaseMapping returns the mapping an ISUPPORT CASEMAPPING value names:
// "" is rfc1459 (the protocol's default), an unknown name is ascii.
func ParseCaseMapping(token string) CaseMapping {
	switch m := CaseMapping(strings.ToLower(strings.TrimSpace(token))); m {
	case "":
		return CaseMappingRFC1459
	case CaseMappingASCII, CaseMappingRFC1459, CaseMappingStrictRFC1459:
		return m
	default:
		return CaseMappingASCII
	}
}

// Fold returns s in the mapping's canonical case: two names are the same
// on the network exactly when their folds are equal.
func (m CaseMapping) Fold(s string) string {
	if m == "" {
		m = CaseMappingRFC1459
	}
	var b []byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		f := c
		switch {
		case c >= 'A' && c <= 'Z':
			f = c + 'a' - 'A'
		case m == CaseMappingASCII:
		case c == '[':
			f = '{'
		case c == ']':
			f = '}'
		case c == '\\':
			f = '|'
		case c == '~' && m == CaseMappingRFC1459:
			f = '^'
		}
		if f != c && b == nil {
			b = []byte(s)
		}
		if b != nil {
			b[i] = f
		}
	}
	if b == nil {
		return s
	}
	return string(b)
}

// Equal reports whether a and b name the same nick or account.
func (m CaseMapping) Equal(a, b string) bool { return m.Fold(a) == m.Fold(b) }
