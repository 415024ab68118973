package config

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"regexp"
)

// principalRE is the form of acl.principal: "name[/instance...][@REALM]".
var principalRE = regexp.MustCompile(`^[^@\s]+(@[^@\s]+)?$`)

// validateKerberos checks acl.keytab, acl.principal and acl.krb5_conf.
// The keytab and krb5.conf are opened, so check-config names
// one that is missing or that the bot's user cannot read; the keytab's
// content is never reported.
func (c *Config) validateKerberos(v *validator) {
	acl := &c.ACL
	if acl.Keytab == "" {
		if acl.Principal != "" {
			v.addf("acl.principal", "is set but acl.keytab is not; expected acl.keytab naming the principal's keytab")
		}
		return
	}
	if acl.Source != "fasjson" {
		v.addf("acl.keytab", "is set with acl.source: %s; the keytab is only used to reach FASJSON (acl.source: fasjson)", acl.Source)
	}
	if problem := keytabProblem(acl.Keytab); problem != "" {
		v.addf("acl.keytab", "%q %s", acl.Keytab, problem)
	}
	if acl.Principal != "" && !principalRE.MatchString(acl.Principal) {
		v.addf("acl.principal", "%q is not a principal; expected e.g. \"kojibot/bot.example.org@FEDORAPROJECT.ORG\"", acl.Principal)
	}
	if acl.Krb5Conf == "" {
		v.addf("acl.krb5_conf", "is empty; expected the Kerberos configuration, e.g. \"/etc/krb5.conf\"")
	} else if problem := readProblem(acl.Krb5Conf, nil); problem != "" {
		v.addf("acl.krb5_conf", "%q %s", acl.Krb5Conf, problem)
	}
}

// keytabProblem says what is wrong with the keytab at path, or "".
func keytabProblem(path string) string {
	return readProblem(path, func(head []byte) string {
		// MIT's keytab format starts with 0x05 and the version, 1 or 2.
		if len(head) < 2 || head[0] != 0x05 || (head[1] != 0x01 && head[1] != 0x02) {
			return "is not a keytab file (expected one written by ktutil or kadmin ktadd)"
		}
		return ""
	})
}

// readProblem opens path and reads its first bytes, returning why the
// file cannot be used, or "". check, when not nil, judges those bytes.
func readProblem(path string, check func(head []byte) string) string {
	f, err := os.Open(path)
	if err != nil {
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return "does not exist"
		case errors.Is(err, fs.ErrPermission):
			return "cannot be read: permission denied (the bot's user needs read access)"
		}
		return "cannot be opened: " + errors.Unwrap(err).Error()
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.IsDir() {
		return "is a directory; expected a file"
	}
	head := make([]byte, 2)
	n, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return "cannot be read: " + err.Error()
	}
	if check != nil {
		return check(head[:n])
	}
	return ""
}
