package config

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

// docKeys lists every key below the struct type t, as the configuration
// reference writes it: "irc.sasl.user", and "hosts.<name>.address" for the
// fields of a map of sections.
func docKeys(t reflect.Type, prefix string) []string {
	var keys []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
		if !f.IsExported() || name == "" || name == "-" {
			continue
		}
		path := name
		if prefix != "" {
			path = prefix + "." + name
		}
		switch {
		case f.Type.Kind() == reflect.Struct:
			keys = append(keys, docKeys(f.Type, path)...)
		case f.Type.Kind() == reflect.Map && f.Type.Elem().Kind() == reflect.Struct:
			keys = append(keys, docKeys(f.Type.Elem(), path+".<name>")...)
		default:
			keys = append(keys, path)
		}
	}
	return keys
}

// TestEveryKeyDocumented: docs/configuration.md names every key the
// configuration accepts, in backquotes, so a new key cannot ship
// undocumented.
func TestEveryKeyDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	keys := docKeys(reflect.TypeFor[Config](), "")
	if len(keys) < 80 {
		t.Fatalf("only %d keys found: %v", len(keys), keys)
	}
	for _, key := range keys {
		if !strings.Contains(string(doc), "`"+key+"`") {
			t.Errorf("docs/configuration.md does not document %s", key)
		}
	}
}
