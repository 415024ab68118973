package main

import (
	"log/slog"

	"github.com/fedora-infra/kojibot/acl"
	"github.com/fedora-infra/kojibot/config"
)

// fasjsonAuthenticator is how the bot authenticates to FASJSON: SPNEGO
// with the keytab of acl.keytab when it is set, else no
// credentials (the stand-in of the tests and the demo).
func fasjsonAuthenticator(cfg config.ACL, log *slog.Logger) (acl.Authenticator, error) {
	if cfg.Keytab == "" {
		return acl.NoAuth{}, nil
	}
	return acl.NewKerberos(acl.KerberosOptions{
		Keytab:    cfg.Keytab,
		Principal: cfg.Principal,
		Krb5Conf:  cfg.Krb5Conf,
		Logger:    log,
	})
}
