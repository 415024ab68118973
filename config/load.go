package config

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"

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
// A secret key (see SecretKeys) may instead be given as <key>_file, a path
// read here with its trailing newline trimmed (a relative path names a
// systemd credential, see CredentialPath). Giving both in the same place
// (file or environment) is an error; one given in the environment wins
// over either given in the file.
//
// Durations are Go durations ("90s", "168h") or whole days ("7d", "1d12h").
// ssh.max_output takes a byte count or a size such as "1MiB".
//
// A file that cannot be read or parsed as YAML is one plain error. Any
// other error joins (errors.Join) a *KeyError for each problem found, with
// the line of the file when the file set the key: every unknown key (a
// typo such as irc.chanels, or hosts[koji-hub].adress inside a map entry),
// every value of the wrong type, every unreadable secret file. No error
// ever holds a secret's value.
func Load(path string) (*Config, error) {
	v := viper.NewWithOptions(viper.KeyDelimiter(keyDelim))
	v.AllowEmptyEnv(true)
	v.SetConfigType("yaml")
	register(v)

	var errs []*KeyError
	lines := map[string]int{}
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		var doc yaml.Node
		if err := yaml.Unmarshal(data, &doc); err != nil {
			return nil, fmt.Errorf("config: parsing %s: %w", path, err)
		}
		errs = checkKeys(&doc, reflect.TypeFor[Config](), "", lines)
		if err := v.ReadConfig(bytes.NewReader(data)); err != nil {
			return nil, fmt.Errorf("config: parsing %s: %w", path, err)
		}
	}

	cfg := new(Config)
	var md mapstructure.Metadata
	err := v.Unmarshal(cfg, func(dc *mapstructure.DecoderConfig) {
		dc.DecodeHook = decodeHook()
		dc.Metadata = &md
		dc.WeaklyTypedInput = false
	})
	var unused []*KeyError
	for _, p := range md.Unused {
		unused = append(unused, unknownKey(p))
	}
	for _, ke := range append(unused, decodeErrors(err, v.AllSettings())...) {
		if underAny(ke.Key, errs) { // the file's own check named it, or the bad section above it
			continue
		}
		if env := envSource(ke.Key); env != "" {
			ke.Problem += " (from " + env + ")"
		}
		errs = append(errs, ke)
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
		for _, ke := range errs {
			if ke.Line == 0 && envSource(ke.Key) == "" {
				ke.Line = lines[strings.ToLower(ke.Key)]
			}
		}
		slices.SortStableFunc(errs, func(a, b *KeyError) int {
			return strings.Compare(strings.ToLower(a.Key), strings.ToLower(b.Key))
		})
		return nil, joinKeyErrors(errs)
	}
	cfg.normalize()
	return cfg, nil
}

// checkKeys checks the keys of the YAML node n, the value of the key at
// path, against t, the type it decodes into: it names every key that t
// does not have and every section given as something other than a
// mapping, each with its line. It records the line of every key it
// passes, lower-cased, in lines.
func checkKeys(n *yaml.Node, t reflect.Type, path string, lines map[string]int) []*KeyError {
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	sections := t.Kind() == reflect.Map && t.Elem().Kind() == reflect.Struct
	if t.Kind() != reflect.Struct && !sections || n.Kind == yaml.DocumentNode || n.Kind == 0 || n.Tag == "!!null" {
		return nil // a leaf, or nothing: its value is checked when decoded
	}
	if n.Kind != yaml.MappingNode {
		if t.Kind() != reflect.Struct {
			return nil
		}
		return []*KeyError{{Key: path, Line: n.Line, Problem: "is a " + nodeKind(n) + "; expected a section of keys"}}
	}
	var errs []*KeyError
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Tag == "!!merge" { // "<<: *anchor" lends the anchor's keys
			errs = append(errs, checkKeys(val, t, path, lines)...)
			continue
		}
		var key string
		var ft reflect.Type
		if t.Kind() == reflect.Struct {
			f, ok := fieldByTag(t, k.Value)
			if !ok {
				ke := unknownKey(joinKey(path, k.Value))
				ke.Line = k.Line
				errs = append(errs, ke)
				continue
			}
			key, ft = joinKey(path, k.Value), f.Type
		} else {
			key, ft = path+"["+k.Value+"]", t.Elem()
		}
		lines[strings.ToLower(key)] = k.Line
		errs = append(errs, checkKeys(val, ft, key, lines)...)
	}
	return errs
}

// nodeKind names the kind of a YAML value for a message, without its value.
func nodeKind(n *yaml.Node) string {
	switch {
	case n.Kind == yaml.SequenceNode:
		return "list"
	case n.Tag == "!!str":
		return "string"
	case n.Tag == "!!bool":
		return "boolean"
	}
	return "number"
}

// joinKey is the path of key below the section at parent.
func joinKey(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

// envSource names the environment variable that set the key at path, or
// the map-valued key holding it, or "" when the value is not from there.
func envSource(path string) string {
	head, _, _ := strings.Cut(path, "[")
	if _, ok := os.LookupEnv(envName(head)); ok && head != "" {
		return envName(head)
	}
	return ""
}

// register declares every key to v: each leaf key gets its default and its
// environment variable; each map-valued key its environment variable.
func register(v *viper.Viper) {
	walkFields(reflect.ValueOf(defaults()).Elem(), "", func(path string, val reflect.Value) {
		key := strings.ReplaceAll(path, ".", keyDelim)
		if val.Kind() != reflect.Map {
			v.SetDefault(key, val.Interface())
		}
		// BindEnv fails only when given no key.
		_ = v.BindEnv(key, envName(path))
	})
}

// envName is the environment variable that overrides the key at path.
func envName(path string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(path, ".", "_"))
}

// walkFields calls fn for every key below the struct value s: the leaves
// (strings, numbers, durations, lists) and the map-valued keys, whose
// entries are free-form. Nested structs are walked, not reported.
func walkFields(s reflect.Value, prefix string, fn func(path string, val reflect.Value)) {
	for i := range s.NumField() {
		tag := tagName(s.Type().Field(i))
		if tag == "" {
			continue
		}
		if f := s.Field(i); f.Kind() == reflect.Struct {
			walkFields(f, joinKey(prefix, tag), fn)
		} else {
			fn(joinKey(prefix, tag), f)
		}
	}
}

// tagName is the key a struct field is read from, or "" for none.
func tagName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
	if !f.IsExported() || name == "-" {
		return ""
	}
	return name
}

// fieldByTag finds the field of struct type t read from key, whatever its
// case (viper folds keys).
func fieldByTag(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		if f := t.Field(i); strings.EqualFold(tagName(f), key) {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// underAny reports whether key is one of the errors' keys or below one.
func underAny(key string, errs []*KeyError) bool {
	key = strings.ToLower(key)
	for _, e := range errs {
		if k := strings.ToLower(e.Key); key == k || strings.HasPrefix(key, k+".") || strings.HasPrefix(key, k+"[") {
			return true
		}
	}
	return false
}

// parentOf is the path of the section holding the key at path:
// "hosts[a.b]" for "hosts[a.b].address", "" for "irc".
func parentOf(path string) string {
	segs := segments(path)
	if len(segs) == 0 {
		return ""
	}
	return strings.TrimSuffix(path[:len(path)-len(segs[len(segs)-1])], ".")
}

// segments splits a path in mapstructure's notation into its steps:
// "hosts[a.b].services" is "hosts", "[a.b]", "services".
func segments(path string) []string {
	var segs []string
	for path != "" {
		end := strings.IndexAny(path, ".[")
		if path[0] == '[' {
			end = strings.IndexByte(path, ']') + 1
		}
		if end <= 0 {
			end = len(path)
		}
		segs = append(segs, path[:end])
		path = strings.TrimPrefix(path[end:], ".")
	}
	return segs
}

// typeAt is the Go type of the key at path, in mapstructure's notation
// ("hosts[koji-hub].address"), or nil when Config has none.
func typeAt(path string) reflect.Type {
	t := reflect.TypeFor[Config]()
	for _, seg := range segments(path) {
		switch {
		case strings.HasPrefix(seg, "[") && (t.Kind() == reflect.Map || t.Kind() == reflect.Slice):
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
