package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"
)

// EnvPrefix starts the name of every environment variable Load reads: the
// key path follows, upper-cased, with "_" for ".": koji.db.dsn is
// KOJIBOT_KOJI_DB_DSN, koji.db_user is KOJIBOT_KOJI_DB_USER.
const EnvPrefix = "KOJIBOT_"

// keyDelim separates the levels of a key inside viper. It is not "." because
// hosts entries are named after Koji hosts, and those names hold dots.
const keyDelim = "::"

// fileSuffix turns a secret's key into the key of the file that may hold it.
const fileSuffix = "_file"

// Load reads the configuration: the defaults (see Default), then the YAML
// file at path (none when path is ""), then the environment, then secrets
// given as files. It does not call Validate.
//
// Every leaf key can be set from the environment (EnvPrefix). A list is
// given there as comma-separated values (KOJIBOT_IRC_CHANNELS="#a,#b"), a
// map-valued key (hosts, acl.accounts, acl.groups, acl.commands, xen.guests)
// as a JSON object, which replaces the file's map. A variable that is set
// but empty sets the key to "" (KOJIBOT_HTTP_LISTEN= turns HTTP off).
//
// A secret key (irc.sasl.password, koji.db.dsn) may instead be given as
// <key>_file, a path read here with its trailing newline trimmed (a
// relative path names a systemd credential, see CredentialPath). Giving
// both in the same place (file or environment) is an error; one given in
// the environment wins over either given in the file.
//
// Durations are Go durations ("90s", "168h") or whole days ("7d", "1d12h").
// ssh.max_output takes a byte count or a size such as "1MiB".
//
// A file that cannot be read or parsed as YAML is one plain error. Any
// other error joins (errors.Join) a *KeyError for each problem found:
// every unknown key (a typo such as irc.chanels, or hosts[koji-hub].adress
// inside a map entry), every value of the wrong type, every unreadable
// secret file. No error ever holds a secret's value.
func Load(path string) (*Config, error) {
	v := viper.NewWithOptions(viper.KeyDelimiter(keyDelim))
	v.AllowEmptyEnv(true)
	v.SetConfigType("yaml")
	register(v)

	var errs []*KeyError
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		if err := v.ReadConfig(bytes.NewReader(data)); err != nil {
			return nil, fmt.Errorf("config: parsing %s: %w", path, err)
		}
		errs = append(errs, fileUnknownKeys(data)...)
	}

	badSections := checkSections(v)
	errs = append(errs, badSections...)

	cfg := new(Config)
	var md mapstructure.Metadata
	err := v.Unmarshal(cfg, func(dc *mapstructure.DecoderConfig) {
		dc.DecodeHook = decodeHook()
		dc.Metadata = &md
		dc.WeaklyTypedInput = false
	})
	settings := v.AllSettings()
	for _, ke := range append(unusedKeys(&md), decodeErrors(err, settings)...) {
		if !underAny(ke.Key, badSections) && !slices.ContainsFunc(errs, ke.sameAs) {
			if env := envSource(ke.Key, os.LookupEnv); env != "" {
				ke.Problem += " (from " + env + ")"
			}
			errs = append(errs, ke)
		}
	}
	if len(errs) == 0 {
		base := ""
		if path != "" {
			base = filepath.Dir(path)
		}
		errs = append(errs, resolveSecrets(cfg, base, os.LookupEnv, os.ReadFile)...)
		errs = append(errs, resolveCredentialKeys(cfg, base, os.LookupEnv)...)
	}
	if len(errs) > 0 {
		slices.SortStableFunc(errs, func(a, b *KeyError) int {
			return strings.Compare(strings.ToLower(a.Key), strings.ToLower(b.Key))
		})
		return nil, joinKeyErrors(errs)
	}
	cfg.normalize()
	return cfg, nil
}

// sameAs reports whether e and o report the same problem with the same key,
// whatever the case of the key.
func (e *KeyError) sameAs(o *KeyError) bool {
	return strings.EqualFold(e.Key, o.Key) && strings.EqualFold(e.Problem, o.Problem)
}

// envSource names the environment variable that set the key at path, or
// the map-valued key holding it, or "" when the value is not from there.
func envSource(path string, lookupEnv func(string) (string, bool)) string {
	segs := splitPath(path)
	if i := slices.IndexFunc(segs, func(s string) bool { return strings.HasPrefix(s, "[") }); i >= 0 {
		segs = segs[:i]
	}
	if len(segs) == 0 {
		return ""
	}
	name := envName(strings.Join(segs, "."))
	if _, ok := lookupEnv(name); ok {
		return name
	}
	return ""
}

// fileUnknownKeys names every unknown key of the YAML file data, as written.
// Viper drops a key whose value is null or an empty mapping before decoding
// ("irc: {chanels: }"), so the file's own tree is decoded too, and the keys
// that decoding did not use are kept (its values may still be overridden
// by the environment, and are checked from viper's settings).
func fileUnknownKeys(data []byte) []*KeyError {
	var raw map[string]any
	if err := yaml.Unmarshal(data, &raw); err != nil || raw == nil {
		return nil // viper has parsed it already; nothing more to learn
	}
	var scratch Config
	var md mapstructure.Metadata
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		DecodeHook: keysOnly,
		Metadata:   &md,
		Result:     &scratch,
	})
	if err != nil {
		return []*KeyError{{Problem: err.Error()}}
	}
	_ = dec.Decode(raw) // only its unused keys matter here
	return unusedKeys(&md)
}

// keysOnly is the decode hook of a decoding that looks at keys only: every
// value but a section (or a map of sections) decodes as its zero value, so
// that no bad value stops the decoding before all its keys are seen
// (mapstructure records a section's unused keys only when the section
// decodes without error). Values are checked by the real decoding.
func keysOnly(from, to reflect.Type, data any) (any, error) {
	switch {
	case to.Kind() == reflect.Struct && from.Kind() == reflect.Map:
		return data, nil
	case to.Kind() == reflect.Map && to.Elem().Kind() == reflect.Struct && from.Kind() == reflect.Map:
		return data, nil
	}
	return reflect.Zero(to).Interface(), nil
}

// unusedKeys reports, as unknown, every key a decoding did not use:
// mapstructure's Metadata.Unused, full paths such as "irc.chanels" or
// "hosts[koji-hub].adress".
func unusedKeys(md *mapstructure.Metadata) []*KeyError {
	out := make([]*KeyError, 0, len(md.Unused))
	for _, path := range md.Unused {
		segs := splitPath(path)
		if len(segs) == 0 {
			continue
		}
		out = append(out, unknownKey(joinPath(segs[:len(segs)-1]), segs[len(segs)-1]))
	}
	return out
}

// joinPath is the inverse of splitPath: "hosts", "[a.b]", "services" is
// "hosts[a.b].services".
func joinPath(segs []string) string {
	var b strings.Builder
	for i, seg := range segs {
		if i > 0 && !strings.HasPrefix(seg, "[") {
			b.WriteByte('.')
		}
		b.WriteString(seg)
	}
	return b.String()
}

// register declares every key to v: each leaf key gets its default and its
// environment variable; each map-valued key its environment variable.
func register(v *viper.Viper) {
	walkFields(reflect.ValueOf(defaults()).Elem(), "", func(path string, val reflect.Value) {
		key := strings.ReplaceAll(path, ".", keyDelim)
		if val.Kind() != reflect.Map {
			v.SetDefault(key, plain(val))
		}
		// BindEnv fails only when given no key.
		_ = v.BindEnv(key, envName(path))
	})
}

// envName is the environment variable that overrides the key at path.
func envName(path string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(path, ".", "_"))
}

// plain converts a default to the basic value viper stores: a Secret becomes
// a string, a slice a fresh []string; durations and numbers stay as they are.
func plain(val reflect.Value) any {
	switch {
	case val.Type() == reflect.TypeFor[Secret]():
		return val.String()
	case val.Kind() == reflect.Slice:
		if val.IsNil() {
			return nil
		}
		return slices.Clone(val.Interface().([]string))
	default:
		return val.Interface()
	}
}

// walkFields calls fn for every key below the struct value s: the leaves
// (strings, numbers, durations, lists) and the map-valued keys, whose
// entries are free-form. Nested structs are walked, not reported.
func walkFields(s reflect.Value, prefix string, fn func(path string, val reflect.Value)) {
	t := s.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		tag := tagName(f)
		if tag == "" {
			continue
		}
		path := tag
		if prefix != "" {
			path = prefix + "." + tag
		}
		if f.Type.Kind() == reflect.Struct {
			walkFields(s.Field(i), path, fn)
			continue
		}
		fn(path, s.Field(i))
	}
}

// walkSections calls fn with the path of every section: every struct-valued
// key below the struct type t.
func walkSections(t reflect.Type, prefix string, fn func(path string)) {
	for i := range t.NumField() {
		f := t.Field(i)
		tag := tagName(f)
		if tag == "" || f.Type.Kind() != reflect.Struct {
			continue
		}
		path := tag
		if prefix != "" {
			path = prefix + "." + tag
		}
		fn(path)
		walkSections(f.Type, path, fn)
	}
}

// tagName is the key a struct field is read from, or "" for none.
func tagName(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	name, _, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
	if name == "-" {
		return ""
	}
	return name
}

// checkSections reports every section (irc, irc.sasl, koji.db, ...) that
// the file or the environment sets to something other than a mapping. Viper
// would otherwise rebuild such a section from its defaults in an order that
// depends on map iteration, sometimes dropping the bad value unreported.
func checkSections(v *viper.Viper) []*KeyError {
	var errs []*KeyError
	walkSections(reflect.TypeFor[Config](), "", func(path string) {
		val := v.Get(strings.ReplaceAll(path, ".", keyDelim))
		if val == nil {
			return
		}
		if _, ok := val.(map[string]any); !ok {
			errs = append(errs, &KeyError{Key: path, Problem: fmt.Sprintf("is a %s; expected a section of keys", yamlKind(val))})
		}
	})
	return errs
}

// yamlKind names the kind of a decoded YAML value for a message, without
// showing the value itself.
func yamlKind(val any) string {
	switch reflect.ValueOf(val).Kind() {
	case reflect.Slice, reflect.Array:
		return "list"
	case reflect.Map:
		return "mapping"
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	default:
		return "number"
	}
}

// underAny reports whether key is one of the errors' keys or below one.
func underAny(key string, errs []*KeyError) bool {
	for _, e := range errs {
		if key == e.Key || strings.HasPrefix(key, e.Key+".") || strings.HasPrefix(key, e.Key+"[") {
			return true
		}
	}
	return false
}

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

// movedKeys names the new home of a key an older kojibot read: such a key
// is refused, and the message says where it went.
var movedKeys = map[string]string{
	"irc.user_rate":  "commands.user_rate, which limits callers on every transport",
	"irc.user_burst": "commands.user_burst, which limits callers on every transport",
}

// unknownProblem is the Problem of a KeyError naming an unknown key.
const unknownProblem = "unknown key"

// decodeErrors turns the error of mapstructure's decoding into one KeyError
// per value mapstructure or a hook refused, shown from settings (what was
// decoded) unless it is a secret. Unknown keys come from the decoding's
// Metadata (unusedKeys), never from an error's text.
func decodeErrors(err error, settings map[string]any) []*KeyError {
	var out []*KeyError
	var walk func(error)
	walk = func(err error) {
		switch e := err.(type) {
		case nil:
		case interface{ Unwrap() []error }:
			for _, inner := range e.Unwrap() {
				walk(inner)
			}
		case *mapstructure.DecodeError:
			inner := e.Unwrap()
			switch inner.(type) {
			case *mapstructure.DecodeError, interface{ Unwrap() []error }:
				walk(inner)
				return
			}
			msg := inner.Error()
			var ve *valueError
			if !errors.As(inner, &ve) {
				msg = badValue(e.Name(), settings)
			}
			out = append(out, &KeyError{Key: e.Name(), Problem: msg})
		default:
			if inner := errors.Unwrap(err); inner != nil {
				walk(inner)
				return
			}
			out = append(out, &KeyError{Problem: err.Error()})
		}
	}
	walk(err)
	return out
}

// unknownKey reports key, unknown below the section at parent, suggesting
// the closest known key when there is one.
func unknownKey(parent, key string) *KeyError {
	full := key
	if parent != "" {
		full = parent + "." + key
	}
	ke := &KeyError{Key: full, Problem: unknownProblem}
	if moved, ok := movedKeys[strings.ToLower(full)]; ok {
		ke.Problem += " (it has moved: use " + moved + ")"
		return ke
	}
	if best := closest(key, keysAt(parent)); best != "" {
		if parent != "" {
			best = parent + "." + best
		}
		ke.Problem += fmt.Sprintf(" (did you mean %s?)", best)
	}
	return ke
}

// keysAt lists the keys the section at path (in mapstructure's notation:
// "irc.sasl", "hosts[koji-hub]") accepts, or nil when it is not a section.
func keysAt(path string) []string {
	t := typeAt(splitPath(path))
	if t == nil || t.Kind() != reflect.Struct {
		return nil
	}
	var keys []string
	for i := range t.NumField() {
		if tag := tagName(t.Field(i)); tag != "" {
			keys = append(keys, tag)
		}
	}
	return keys
}

// splitPath splits a key path in mapstructure's notation into its steps:
// "hosts[a.b].services[0]" is hosts, [a.b], services, [0].
func splitPath(path string) []string {
	var segs []string
	for path != "" {
		if path[0] == '[' {
			end := strings.IndexByte(path, ']')
			if end < 0 {
				return append(segs, path)
			}
			segs = append(segs, path[:end+1])
			path = strings.TrimPrefix(path[end+1:], ".")
			continue
		}
		i := strings.IndexAny(path, ".[")
		if i < 0 {
			return append(segs, path)
		}
		segs = append(segs, path[:i])
		path = strings.TrimPrefix(path[i:], ".")
	}
	return segs
}

// typeAt is the Go type of the key at segs, or nil when there is none.
func typeAt(segs []string) reflect.Type {
	t := reflect.TypeFor[Config]()
	for _, seg := range segs {
		switch {
		case strings.HasPrefix(seg, "["):
			if t.Kind() != reflect.Map && t.Kind() != reflect.Slice {
				return nil
			}
			t = t.Elem()
		case t.Kind() == reflect.Struct:
			f, ok := fieldByTag(t, seg)
			if !ok {
				return nil
			}
			t = f.Type
		default:
			return nil
		}
	}
	return t
}

// lookup finds the value at segs in decoded settings.
func lookup(settings any, segs []string) (any, bool) {
	cur := settings
	for _, seg := range segs {
		key := strings.TrimSuffix(strings.TrimPrefix(seg, "["), "]")
		switch c := cur.(type) {
		case map[string]any:
			val, ok := c[key]
			if !ok {
				return nil, false
			}
			cur = val
		case []any:
			i, err := strconv.Atoi(key)
			if err != nil || i < 0 || i >= len(c) {
				return nil, false
			}
			cur = c[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

// badValue words the refusal of the value at path: what was given (only
// its kind, for a secret) and what is expected.
func badValue(path string, settings map[string]any) string {
	segs := splitPath(path)
	t := typeAt(segs)
	got := "a value of the wrong type"
	if val, ok := lookup(settings, segs); ok && val != nil {
		got = "a " + yamlKind(val)
		if s, isStr := val.(string); isStr && t != reflect.TypeFor[Secret]() {
			got = strconv.Quote(truncate(s, 60))
		} else if k := reflect.ValueOf(val).Kind(); k != reflect.String && k != reflect.Slice && k != reflect.Map && t != reflect.TypeFor[Secret]() {
			got = fmt.Sprintf("%v (a %s)", val, yamlKind(val))
		}
	}
	return fmt.Sprintf("got %s; expected %s", got, describe(t))
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

// fieldByTag finds the field of struct type t read from key.
func fieldByTag(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		if f := t.Field(i); strings.EqualFold(tagName(f), key) {
			return f, true
		}
	}
	return reflect.StructField{}, false
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

// resolveSecrets fills every Secret field whose value is given as a file
// (its sibling field tagged <key>_file), following the precedence Load
// documents. A relative path is resolved by CredentialPath against
// $CREDENTIALS_DIRECTORY or base. lookupEnv and readFile are os.LookupEnv
// and os.ReadFile, given as parameters for the tests.
func resolveSecrets(cfg *Config, base string, lookupEnv func(string) (string, bool), readFile func(string) ([]byte, error)) []*KeyError {
	var errs []*KeyError
	walkSecrets(reflect.ValueOf(cfg).Elem(), "", func(path string, secret, file reflect.Value) {
		fileKey := path + fileSuffix
		env := func(key string) string {
			s, _ := lookupEnv(envName(key))
			return s
		}
		envValue, envFile := env(path), env(fileKey)
		var from string // the file to read, if any
		switch {
		case envValue != "" && envFile != "":
			errs = append(errs, &KeyError{Key: path, Problem: fmt.Sprintf("both %s and %s are set; set only one", envName(path), envName(fileKey))})
			return
		case envValue != "":
			// viper already put the environment's value in secret.
			file.SetString("")
			return
		case envFile != "":
			from = envFile
		default:
			if secret.String() != "" && file.String() != "" {
				errs = append(errs, &KeyError{Key: path, Problem: fmt.Sprintf("both %s and %s are set; set only one", path, fileKey)})
				return
			}
			from = file.String()
		}
		if from == "" {
			return
		}
		from, err := CredentialPath(from, base, lookupEnv)
		if err != nil {
			errs = append(errs, &KeyError{Key: fileKey, Problem: err.Error()})
			return
		}
		data, err := readFile(from)
		if err != nil {
			var pe *fs.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			errs = append(errs, &KeyError{Key: fileKey, Problem: fmt.Sprintf("cannot read %q: %v", from, err)})
			return
		}
		value := strings.TrimRight(string(data), "\r\n")
		if value == "" {
			errs = append(errs, &KeyError{Key: fileKey, Problem: fmt.Sprintf("%q is empty; expected the secret for %s", from, path)})
			return
		}
		secret.SetString(value)
		file.SetString(from)
	})
	return errs
}

// walkSecrets calls fn for every Secret field below the struct value s, with
// its path and the string field tagged <key>_file beside it. A Secret
// without such a sibling is skipped (a test makes sure there is none).
func walkSecrets(s reflect.Value, prefix string, fn func(path string, secret, file reflect.Value)) {
	t := s.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		tag := tagName(f)
		if tag == "" {
			continue
		}
		path := tag
		if prefix != "" {
			path = prefix + "." + tag
		}
		switch {
		case f.Type == reflect.TypeFor[Secret]():
			if ff, ok := fieldByTag(t, tag+fileSuffix); ok && ff.Type.Kind() == reflect.String {
				fn(path, s.Field(i), s.FieldByIndex(ff.Index))
			}
		case f.Type.Kind() == reflect.Struct:
			walkSecrets(s.Field(i), path, fn)
		}
	}
}
