package config

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
)

// CredentialsEnv names the environment variable in which systemd gives a
// service the directory of its credentials (LoadCredential=,
// SetCredentialEncrypted=): /run/credentials/kojibot.service.
const CredentialsEnv = "CREDENTIALS_DIRECTORY"

// credentialKeys are the keys, besides the secrets' <key>_file keys, that
// name a file the bot reads and that may come from a systemd credential.
var credentialKeys = []struct {
	key   string
	field func(*Config) *string
}{
	{"ssh.key_file", func(c *Config) *string { return &c.SSH.KeyFile }},
	{"ssh.known_hosts", func(c *Config) *string { return &c.SSH.KnownHosts }},
	{"acl.keytab", func(c *Config) *string { return &c.ACL.Keytab }},
	{"koji.hub.keytab", func(c *Config) *string { return &c.Koji.Hub.Keytab }},
	{"koji.hub.cert_file", func(c *Config) *string { return &c.Koji.Hub.CertFile }},
	{"messaging.cert_file", func(c *Config) *string { return &c.Messaging.CertFile }},
	{"messaging.key_file", func(c *Config) *string { return &c.Messaging.KeyFile }},
}

// SecretKeys are the keys that hold a Secret, each of which may instead be
// given as <key>_file. Every Secret of Config is here (a test checks it).
var SecretKeys = []string{"irc.sasl.password", "matrix.access_token", "matrix.password", "koji.db.dsn", "state.dsn"}

// secretFields are the fields of each of SecretKeys: the secret and the
// path of the file it may be read from.
var secretFields = map[string]func(*Config) (*Secret, *string){
	"irc.sasl.password":   func(c *Config) (*Secret, *string) { return &c.IRC.SASL.Password, &c.IRC.SASL.PasswordFile },
	"matrix.access_token": func(c *Config) (*Secret, *string) { return &c.Matrix.AccessToken, &c.Matrix.AccessTokenFile },
	"matrix.password":     func(c *Config) (*Secret, *string) { return &c.Matrix.Password, &c.Matrix.PasswordFile },
	"koji.db.dsn":         func(c *Config) (*Secret, *string) { return &c.Koji.DB.DSN, &c.Koji.DB.DSNFile },
	"state.dsn":           func(c *Config) (*Secret, *string) { return &c.State.DSN, &c.State.DSNFile },
}

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
	for _, k := range credentialKeys {
		p, err := CredentialPath(*k.field(cfg), base, lookupEnv)
		if err != nil {
			errs = append(errs, &KeyError{Key: k.key, Problem: err.Error()})
			continue
		}
		*k.field(cfg) = p
	}
	return errs
}

// resolveSecrets reads every secret of SecretKeys given as a file: at most
// one of <key> and <key>_file may be set in the file, and at most one in
// the environment, where either wins over the file. A relative path is
// resolved by CredentialPath against $CREDENTIALS_DIRECTORY or base.
// lookupEnv and readFile are os.LookupEnv and os.ReadFile, given as
// parameters for the tests.
func resolveSecrets(cfg *Config, base string, lookupEnv func(string) (string, bool), readFile func(string) ([]byte, error)) []*KeyError {
	var errs []*KeyError
	for _, key := range SecretKeys {
		secret, file := secretFields[key](cfg)
		fileKey := key + "_file"
		envValue, _ := lookupEnv(envName(key))
		envFile, _ := lookupEnv(envName(fileKey))
		from := *file // viper put the environment's value, if any, in secret
		switch {
		case envValue != "" && envFile != "":
			errs = append(errs, &KeyError{Key: key, Problem: fmt.Sprintf("both %s and %s are set; set only one", envName(key), envName(fileKey))})
			continue
		case envValue != "":
			from = ""
		case envFile == "" && *secret != "" && *file != "":
			errs = append(errs, &KeyError{Key: key, Problem: fmt.Sprintf("both %s and %s are set; set only one", key, fileKey)})
			continue
		}
		*file = "" // the path actually read, once read
		if from == "" {
			continue
		}
		path, err := CredentialPath(from, base, lookupEnv)
		if err != nil {
			errs = append(errs, &KeyError{Key: fileKey, Problem: err.Error()})
			continue
		}
		data, err := readFile(path)
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the path is said once, below
		}
		value := strings.TrimRight(string(data), "\r\n")
		switch {
		case err != nil:
			errs = append(errs, &KeyError{Key: fileKey, Problem: fmt.Sprintf("cannot read %q: %v", path, err)})
		case value == "":
			errs = append(errs, &KeyError{Key: fileKey, Problem: fmt.Sprintf("%q is empty; expected the secret for %s", path, key)})
		default:
			*secret, *file = Secret(value), path
		}
	}
	return errs
}
