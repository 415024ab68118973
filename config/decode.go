package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-viper/mapstructure/v2"
)

// valueError is a hook's refusal of a value. Its message already shows the
// value and what is expected; no hook decodes a Secret, so it shows none.
type valueError struct{ msg string }

// Error implements error.
func (e *valueError) Error() string { return e.msg }

// valuef makes a valueError.
func valuef(format string, args ...any) error {
	return &valueError{msg: fmt.Sprintf(format, args...)}
}

// decodeHook converts what YAML and the environment give into the typed
// fields: durations (with days), sizes, comma-separated lists, JSON maps
// and, from the environment, numbers and booleans.
func decodeHook() mapstructure.DecodeHookFunc {
	return mapstructure.ComposeDecodeHookFunc(
		durationHook,
		sizeHook,
		listHook,
		jsonMapHook,
		mapstructure.StringToBasicTypeHookFunc(),
	)
}

// durationHook decodes a time.Duration from a string such as "5m" or "7d".
// A bare number is refused: "cache_ttl: 300" would otherwise mean 300ns.
func durationHook(from, to reflect.Type, data any) (any, error) {
	if to != reflect.TypeFor[time.Duration]() || from == to {
		return data, nil
	}
	switch from.Kind() {
	case reflect.String:
		return parseDuration(data.(string))
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return nil, valuef("%v has no unit; expected a duration such as \"90s\", \"5m\", \"6h\" or \"7d\"", data)
	}
	return data, nil
}

// daysRE matches a leading whole number of days, as in "7d" or "1d12h".
var daysRE = regexp.MustCompile(`^([0-9]+)d(.*)$`)

// parseDuration parses a Go duration, also allowing a leading count of days.
func parseDuration(s string) (time.Duration, error) {
	bad := valuef("%q is not a duration; expected e.g. \"90s\", \"5m\", \"6h\" or \"7d\"", s)
	s = strings.TrimSpace(s)
	var days time.Duration
	if m := daysRE.FindStringSubmatch(s); m != nil {
		n, err := strconv.ParseInt(m[1], 10, 32)
		if err != nil || n > 100000 {
			return 0, bad
		}
		days = time.Duration(n) * 24 * time.Hour
		s = m[2]
		if s == "" {
			return days, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, bad
	}
	return days + d, nil
}

// sizeUnits are the suffixes sizeHook understands.
var sizeUnits = []struct {
	suffix string
	mult   int64
}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"B", 1}}

// sizeHook decodes an int from a size with a binary unit ("1MiB", "512KiB").
// A string without one of those units is left for the number hooks.
func sizeHook(from, to reflect.Type, data any) (any, error) {
	if from.Kind() != reflect.String || to.Kind() != reflect.Int {
		return data, nil
	}
	s := strings.TrimSpace(data.(string))
	for _, u := range sizeUnits {
		num, ok := strings.CutSuffix(s, u.suffix)
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
		if err != nil || n < 0 || n > (1<<62)/u.mult {
			return nil, valuef("%q is not a size; expected e.g. \"1048576\", \"512KiB\" or \"1MiB\"", s)
		}
		return int(n * u.mult), nil
	}
	return data, nil
}

// listHook decodes a list from a comma-separated string, as the environment
// gives lists; spaces around the items are dropped, and so are empty items.
func listHook(from, to reflect.Type, data any) (any, error) {
	if from.Kind() != reflect.String || to.Kind() != reflect.Slice {
		return data, nil
	}
	items := []string{}
	for item := range strings.SplitSeq(data.(string), ",") {
		if item = strings.TrimSpace(item); item != "" {
			items = append(items, item)
		}
	}
	return items, nil
}

// jsonMapHook decodes a map from a JSON object, as the environment gives the
// map-valued keys. The object's keys are lower-cased like viper's.
func jsonMapHook(from, to reflect.Type, data any) (any, error) {
	if from.Kind() != reflect.String || to.Kind() != reflect.Map {
		return data, nil
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(data.(string)), &m); err != nil || m == nil {
		return nil, valuef(`got a string that is not a JSON object; expected e.g. {"name": ...}`)
	}
	out := make(map[string]any, len(m))
	for k, val := range m {
		lk := strings.ToLower(k)
		if _, dup := out[lk]; dup {
			return nil, valuef("has %q twice (keys are not case-sensitive)", lk)
		}
		out[lk] = val
	}
	return out, nil
}

// truncate shortens s to at most n bytes, on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// describe says in words what a key of type t takes.
func describe(t reflect.Type) string {
	if t == nil {
		return "a known key"
	}
	switch t {
	case reflect.TypeFor[time.Duration]():
		return `a duration such as "90s", "5m" or "7d"`
	case reflect.TypeFor[Secret]():
		return "a string (or the <key>_file form)"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice:
		return "a list of " + strings.TrimPrefix(describe(t.Elem()), "a ") + "s"
	case reflect.Map:
		if t.Elem().Kind() == reflect.Struct {
			return "a mapping of names to sections"
		}
		return "a mapping of names to " + strings.TrimPrefix(describe(t.Elem()), "a ") + "s"
	case reflect.Struct:
		return "a section of keys"
	}
	return "a value of type " + t.String()
}

// decodeErrors turns the error of mapstructure's decoding into one KeyError
// per value mapstructure or a hook refused, shown from settings (what was
// decoded) unless it is a secret. Unknown keys come from the decoding's
// Metadata, never from an error.
func decodeErrors(err error, settings map[string]any) []*KeyError {
	var out []*KeyError
	var walk func(error)
	walk = func(err error) {
		de, isDecode := err.(*mapstructure.DecodeError)
		switch e := err.(type) {
		case nil:
		case interface{ Unwrap() []error }:
			for _, inner := range e.Unwrap() {
				walk(inner)
			}
		case interface{ Unwrap() error }:
			inner := e.Unwrap()
			_, nested := inner.(interface{ Unwrap() []error })
			if _, again := inner.(*mapstructure.DecodeError); !isDecode || nested || again {
				walk(inner)
				return
			}
			var ve *valueError
			msg := badValue(de.Name(), settings)
			if errors.As(inner, &ve) {
				msg = ve.msg
			}
			out = append(out, &KeyError{Key: de.Name(), Problem: msg})
		default:
			out = append(out, &KeyError{Problem: err.Error()})
		}
	}
	walk(err)
	return out
}

// badValue words the refusal of the value at path: what was given (only
// its kind, for a secret) and what is expected.
func badValue(path string, settings map[string]any) string {
	t := typeAt(path)
	var val any = settings
	for _, seg := range segments(path) {
		key := strings.Trim(seg, "[]")
		switch c := val.(type) {
		case map[string]any:
			val = c[key]
		case []any:
			i, err := strconv.Atoi(key)
			val = nil
			if err == nil && i >= 0 && i < len(c) {
				val = c[i]
			}
		default:
			val = nil
		}
	}
	got := "a value of the wrong type"
	switch kind := valueKind(val); {
	case val == nil:
	case t == reflect.TypeFor[Secret]() || kind == "list" || kind == "mapping":
		got = "a " + kind // a secret's value is never shown
	case kind == "string":
		got = strconv.Quote(truncate(val.(string), 60))
	default:
		got = fmt.Sprintf("%v (a %s)", val, kind)
	}
	return "got " + got + "; expected " + describe(t)
}

// valueKind names the kind of a decoded value for a message.
func valueKind(val any) string {
	switch reflect.ValueOf(val).Kind() {
	case reflect.Slice, reflect.Array:
		return "list"
	case reflect.Map:
		return "mapping"
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	}
	return "number"
}
