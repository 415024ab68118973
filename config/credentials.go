package config

import (
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
)

// CredentialsEnv names the environment variable in which systemd gives a
// service the directory of its credentials (LoadCredential=,
// SetCredentialEncrypted=): /run/credentials/kojibot.service.
const CredentialsEnv = "CREDENTIALS_DIRECTORY"

// credentialKeys are the keys, besides the secrets' <key>_file keys, that
// name a file the bot reads and that may come from a systemd credential.
var credentialKeys = []string{"ssh.key_file", "ssh.known_hosts", "acl.keytab", "koji.hub.keytab", "koji.hub.cert_file"}

// CredentialPath resolves the path given to a *_file key (or acl.keytab,
// ssh.key_file, ssh.known_hosts): an absolute path is kept as it is; a relative one is
// the name of a systemd credential when $CREDENTIALS_DIRECTORY is set, so
//
//	irc: {sasl: {password_file: sasl-password}}
//
// with LoadCredential=sasl-password:/etc/kojibot/sasl-password in the unit
// reads /run/credentials/kojibot.service/sasl-password. Without
// $CREDENTIALS_DIRECTORY (check-config or exec from a shell) a relative
// path is relative to base, the directory of the configuration file, which
// is where the unit's LoadCredential= lines take the files from. A
// relative path under $CREDENTIALS_DIRECTORY must be a plain credential
// name: no "/", ".." or ".". lookupEnv is os.LookupEnv.
func CredentialPath(path, base string, lookupEnv func(string) (string, bool)) (string, error) {
	if path == "" || filepath.IsAbs(path) {
		return path, nil
	}
	if dir, ok := lookupEnv(CredentialsEnv); ok && dir != "" {
		if strings.ContainsRune(path, '/') || path == "." || path == ".." {
			return "", fmt.Errorf("%q is relative and $%s is set: expected a credential name (no \"/\") or an absolute path", path, CredentialsEnv)
		}
		return filepath.Join(dir, path), nil
	}
	if base == "" {
		return path, nil
	}
	return filepath.Join(base, path), nil
}

// resolveCredentialKeys rewrites every key of credentialKeys in cfg to the
// path CredentialPath gives, with a KeyError for each it refuses. It does
// not read the files: the packages using them do, and report there.
func resolveCredentialKeys(cfg *Config, base string, lookupEnv func(string) (string, bool)) []*KeyError {
	var errs []*KeyError
	for _, key := range credentialKeys {
		f, ok := fieldAt(reflect.ValueOf(cfg).Elem(), strings.Split(key, "."))
		if !ok || f.Kind() != reflect.String {
			errs = append(errs, &KeyError{Key: key, Problem: "is not a known string key (internal error)"})
			continue
		}
		p, err := CredentialPath(f.String(), base, lookupEnv)
		if err != nil {
			errs = append(errs, &KeyError{Key: key, Problem: err.Error()})
			continue
		}
		f.SetString(p)
	}
	return errs
}

// fieldAt is the settable field of the struct value s at the key path segs.
func fieldAt(s reflect.Value, segs []string) (reflect.Value, bool) {
	for _, seg := range segs {
		if s.Kind() != reflect.Struct {
			return reflect.Value{}, false
		}
		f, ok := fieldByTag(s.Type(), seg)
		if !ok {
			return reflect.Value{}, false
		}
		s = s.FieldByIndex(f.Index)
	}
	return s, true
}
