package config

// validateKojiHub checks the koji.hub section and koji.weburl: a hub URL
// needs credentials (a keytab for Kerberos, a certificate file for
// certificate auth), and act_as_caller needs a hub URL. The files named
// are opened, so check-config names one the bot cannot read.
func (c *Config) validateKojiHub(v *validator) {
	h := &c.Koji.Hub
	if c.Koji.WebURL != "" && !isHTTPURL(c.Koji.WebURL) {
		v.addf("koji.weburl", "%q is not an http(s) URL; expected e.g. \"https://koji.fedoraproject.org/koji\", or \"\"", c.Koji.WebURL)
	}
	switch h.Auth {
	case "kerberos", "certificate":
	default:
		v.addf("koji.hub.auth", "%q is not a login method; expected \"kerberos\" or \"certificate\"", h.Auth)
	}
	if h.URL == "" {
		if h.ActAsCaller {
			v.addf("koji.hub.act_as_caller", "is true but koji.hub.url is empty; expected koji.hub.url, the hub the bot logs its callers in to")
		}
		return
	}
	if !isHTTPURL(h.URL) {
		v.addf("koji.hub.url", "%q is not an http(s) URL; expected e.g. \"https://koji.fedoraproject.org/kojihub\", or \"\"", h.URL)
	}
	if h.CAFile != "" {
		if problem := readProblem(h.CAFile, nil); problem != "" {
			v.addf("koji.hub.ca_file", "%q %s", h.CAFile, problem)
		}
	}
	switch h.Auth {
	case "kerberos":
		if h.Keytab == "" {
			v.addf("koji.hub.keytab", "is empty with koji.hub.url set and koji.hub.auth: kerberos; expected the keytab of the bot's Koji principal, e.g. \"/etc/kojibot/koji.keytab\" (or koji.hub.auth: certificate with koji.hub.cert_file)")
		} else if problem := keytabProblem(h.Keytab); problem != "" {
			v.addf("koji.hub.keytab", "%q %s", h.Keytab, problem)
		}
		if c.ACL.Krb5Conf == "" && c.ACL.Keytab == "" { // with acl.keytab, validateKerberos says it
			v.addf("acl.krb5_conf", "is empty with koji.hub.auth: kerberos; expected the Kerberos configuration, e.g. \"/etc/krb5.conf\"")
		}
		if h.Principal != "" && !principalRE.MatchString(h.Principal) {
			v.addf("koji.hub.principal", "%q is not a principal; expected e.g. \"kojibot/bot.example.org@FEDORAPROJECT.ORG\", or \"\" for the keytab's first", h.Principal)
		}
	case "certificate":
		if h.CertFile == "" {
			v.addf("koji.hub.cert_file", "is empty with koji.hub.auth: certificate; expected a PEM file with the bot's certificate and key, e.g. \"/etc/kojibot/koji.pem\"")
		} else if problem := readProblem(h.CertFile, nil); problem != "" {
			v.addf("koji.hub.cert_file", "%q %s", h.CertFile, problem)
		}
	}
}
