package commands

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// MaxLineBytes is the longest command line accepted; an IRC line cannot
// carry more text than this anyway.
const MaxLineBytes = 450

// maxWords bounds how many words a command line may hold.
const maxWords = 64

// maxWordBytes bounds one word (a host name is at most 253 bytes).
const maxWordBytes = 255

// ErrSyntax marks a command line that could not be parsed; its message is
// fit for the caller.
var ErrSyntax = errors.New("syntax error")

// syntaxError is a parse failure with a message for the caller and,
// when known, the spec whose usage line should follow it.
type syntaxError struct {
	msg  string
	spec *Spec
}

func (e *syntaxError) Error() string { return e.msg }
func (e *syntaxError) Unwrap() error { return ErrSyntax }

func errorf(spec *Spec, format string, a ...any) error {
	return &syntaxError{msg: fmt.Sprintf(format, a...), spec: spec}
}

// Tokenize splits a command line into words. It refuses invalid UTF-8,
// control characters and over-long lines or words, so nothing unprintable
// ever reaches a handler, a log line or a remote command.
func Tokenize(line string) ([]string, error) {
	if len(line) > MaxLineBytes {
		return nil, errorf(nil, "command line too long (%d bytes, at most %d)", len(line), MaxLineBytes)
	}
	if !utf8.ValidString(line) {
		return nil, errorf(nil, "command line is not valid UTF-8")
	}
	for i, r := range line {
		if unicode.IsControl(r) && r != '\t' || r == '\u2028' || r == '\u2029' || unicode.Is(unicode.Cf, r) {
			return nil, errorf(nil, "control character %U at byte %d is not allowed", r, i)
		}
	}
	words := strings.Fields(line)
	if len(words) > maxWords {
		return nil, errorf(nil, "too many words (%d, at most %d)", len(words), maxWords)
	}
	for _, w := range words {
		if len(w) > maxWordBytes {
			return nil, errorf(nil, "word %s is too long (%d bytes, at most %d)", quoteShort(w), len(w), maxWordBytes)
		}
	}
	return words, nil
}

// quoteShort quotes a caller's value for an error message, cut to a
// readable length.
func quoteShort(s string) string {
	const max = 40
	if utf8.RuneCountInString(s) > max {
		r := []rune(s)
		s = string(r[:max]) + "…"
	}
	return strconv.Quote(s)
}

var (
	reHost     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$`)
	reGlob     = regexp.MustCompile(`^[A-Za-z0-9*?][A-Za-z0-9._*?-]{0,252}$`)
	reNumber   = regexp.MustCompile(`^[0-9]{1,6}(\.[0-9]{1,6})?$`)
	reWord     = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]{0,31}$`)
	reToken    = regexp.MustCompile(`^[A-Za-z0-9]{4,32}$`)
	reJobID    = regexp.MustCompile(`^[A-Za-z0-9-]{1,32}$`)
	reRelease  = regexp.MustCompile(`^(rawhide|[a-z]{1,6}[0-9]{1,3}(\.[0-9]{1,2})?)$`)
	reNVR      = regexp.MustCompile(`^[A-Za-z0-9_+][A-Za-z0-9._+-]*-[A-Za-z0-9._+~^]+-[A-Za-z0-9._+~^]+$`)
	reSize     = regexp.MustCompile(`^[0-9]{1,7}[MmGg]?$`)
	reDuration = regexp.MustCompile(`^([0-9]{1,6})(s|m|h|d|w)$`)
)

// typeName is how a type is named in usage lines and errors.
func typeName(t ArgType) string {
	switch t {
	case HostName:
		return "host"
	case HostGlob:
		return "glob"
	case Number:
		return "number"
	case Word:
		return "word"
	case Text:
		return "text"
	case Token:
		return "token"
	case JobID:
		return "job"
	case Release:
		return "release"
	case NVR:
		return "nvr"
	case Size:
		return "size"
	case Duration:
		return "duration"
	case DraftID:
		return "id"
	}
	return "value"
}

// checkValue validates one value against its type and returns a message
// for the caller when it does not fit.
func checkValue(t ArgType, name, v string) error {
	bad := func(expect string) error {
		return fmt.Errorf("%s must be %s, got %s", name, expect, quoteShort(v))
	}
	switch t {
	case HostName:
		if !reHost.MatchString(v) {
			return bad("a host name (letters, digits, '.', '-', '_')")
		}
	case HostGlob:
		if !reGlob.MatchString(v) {
			return bad("a host name or pattern with * and ?")
		}
	case Number:
		if !reNumber.MatchString(v) {
			return bad("a number")
		}
	case Word:
		if !reWord.MatchString(v) {
			return bad("a word")
		}
	case Text:
		// Control characters were refused by Tokenize; free text is otherwise accepted.
	case Token:
		if !reToken.MatchString(v) {
			return bad("a confirmation token")
		}
	case JobID, DraftID:
		if !reJobID.MatchString(v) {
			return bad("an id")
		}
	case Release:
		if !reRelease.MatchString(v) {
			return bad("a release such as f41, el9 or epel10")
		}
	case NVR:
		if !reNVR.MatchString(v) || len(v) > 200 {
			return bad("a build name-version-release such as foo-1.0-1.fc41")
		}
	case Size:
		if !reSize.MatchString(v) {
			return bad("a size in MiB or with M/G, such as 4096 or 4G")
		}
	case Duration:
		if _, err := ParseDuration(v); err != nil {
			return bad("a duration such as 40m, 2h or 7d")
		}
	}
	return nil
}

// ParseDuration reads a duration with a unit s, m, h, d (24h) or w (7d).
func ParseDuration(v string) (time.Duration, error) {
	m := reDuration.FindStringSubmatch(v)
	if m == nil {
		return 0, fmt.Errorf("bad duration %q", v)
	}
	n, _ := strconv.Atoi(m[1])
	unit := map[string]time.Duration{"s": time.Second, "m": time.Minute, "h": time.Hour, "d": 24 * time.Hour, "w": 7 * 24 * time.Hour}[m[2]]
	return time.Duration(n) * unit, nil
}

// ParseSizeMiB reads a memory size (plain MiB, or with an M or G suffix) in MiB.
func ParseSizeMiB(v string) (int64, error) {
	if !reSize.MatchString(v) {
		return 0, fmt.Errorf("bad size %q", v)
	}
	mult := int64(1)
	switch v[len(v)-1] {
	case 'G', 'g':
		mult, v = 1024, v[:len(v)-1]
	case 'M', 'm':
		v = v[:len(v)-1]
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("bad size %q", v)
	}
	return n * mult, nil
}

// Parsed is a command line matched against its spec, every value checked.
type Parsed struct {
	Spec  *Spec
	Args  map[string][]string
	Flags map[string]string
}

// Parse matches words (after the command name) against spec's flags and
// arguments.
func Parse(spec *Spec, words []string) (*Parsed, error) {
	p := &Parsed{Spec: spec, Args: map[string][]string{}, Flags: map[string]string{}}
	var positional []string
	for i := 0; i < len(words); i++ {
		w := words[i]
		if !strings.HasPrefix(w, "--") || len(w) == 2 {
			positional = append(positional, w)
			continue
		}
		name, value, hasValue := strings.Cut(w[2:], "=")
		var flag *Flag
		for j := range spec.Flags {
			if spec.Flags[j].Name == name {
				flag = &spec.Flags[j]
			}
		}
		if flag == nil {
			return nil, errorf(spec, "unknown option %s", quoteShort(w))
		}
		if _, dup := p.Flags[name]; dup {
			return nil, errorf(spec, "option --%s given twice", name)
		}
		if flag.Bool {
			if hasValue {
				return nil, errorf(spec, "option --%s takes no value", name)
			}
			p.Flags[name] = "true"
			continue
		}
		if !hasValue {
			if i+1 >= len(words) {
				return nil, errorf(spec, "option --%s needs a %s", name, typeName(flag.Type))
			}
			i++
			value = words[i]
		}
		if err := checkValue(flag.Type, "--"+name, value); err != nil {
			return nil, errorf(spec, "%s", err)
		}
		p.Flags[name] = value
	}
	for _, a := range spec.Args {
		if len(positional) == 0 {
			if !a.Optional {
				return nil, errorf(spec, "missing <%s>", a.Name)
			}
			continue
		}
		take := positional[:1]
		if a.Variadic {
			take = positional
		}
		positional = positional[len(take):]
		for _, v := range take {
			if len(a.Choices) > 0 && !slices.Contains(a.Choices, strings.ToLower(v)) {
				return nil, errorf(spec, "%s must be one of %s, got %s", a.Name, strings.Join(a.Choices, ", "), quoteShort(v))
			}
			if err := checkValue(a.Type, a.Name, v); err != nil {
				return nil, errorf(spec, "%s", err)
			}
		}
		if a.Type == Text {
			take = []string{strings.Join(take, " ")}
		}
		if len(a.Choices) > 0 {
			take = []string{strings.ToLower(take[0])}
		}
		p.Args[a.Name] = take
	}
	if len(positional) > 0 {
		return nil, errorf(spec, "unexpected %s", quoteShort(strings.Join(positional, " ")))
	}
	return p, nil
}

// Number returns the argument name as a float; Parse has checked it.
func (p *Parsed) Number(name string) float64 {
	f, err := strconv.ParseFloat(p.Arg(name), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return math.NaN()
	}
	return f
}

// Bool reports whether the Bool flag name was given.
func (p *Parsed) Bool(name string) bool {
	_, ok := p.Flags[name]
	return ok
}

// Duration returns the value of the Duration flag name, or def when it was
// not given. Parse has checked the value; one that does not parse anyway
// is an error, never a zero duration.
func (p *Parsed) Duration(name string, def time.Duration) (time.Duration, error) {
	v, ok := p.Flags[name]
	if !ok {
		return def, nil
	}
	d, err := ParseDuration(v)
	if err != nil {
		return 0, Userf("--%s: %v", name, err)
	}
	return d, nil
}

// Arg returns the first value of the argument name, or "".
func (p *Parsed) Arg(name string) string {
	if v := p.Args[name]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// Normalized is the canonical text of the command: the same action always
// gives the same string, whatever spacing or flag order the caller used.
func (p *Parsed) Normalized() string {
	parts := []string{p.Spec.Name}
	for _, a := range p.Spec.Args {
		parts = append(parts, p.Args[a.Name]...)
	}
	for _, f := range p.Spec.Flags {
		if v, ok := p.Flags[f.Name]; ok {
			if f.Bool {
				parts = append(parts, "--"+f.Name)
			} else {
				parts = append(parts, "--"+f.Name+"="+v)
			}
		}
	}
	return strings.Join(parts, " ")
}
