package acl

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/jcmturner/gokrb5/v8/client"
	krbconfig "github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/spnego"
	"github.com/jcmturner/gokrb5/v8/types"
)

// KerberosOptions configures NewKerberos.
type KerberosOptions struct {
	// Keytab is the path of the bot's keytab (acl.keytab). It is read at
	// every login, so a keytab rotated on disk is picked up.
	Keytab string
	// Principal is the bot's principal, "name[/instance][@REALM]"
	// (acl.principal); empty means the keytab's first principal. Without a
	// realm, krb5.conf's default_realm is used.
	Principal string
	// Krb5Conf is the krb5.conf to read (acl.krb5_conf).
	Krb5Conf string
	// Logger receives logins and renewals; nil discards.
	Logger *slog.Logger
	// Service names the service the tickets are for in log records and
	// reasons ("the Koji hub"); empty means "FASJSON". The error text
	// keeps the FASJSON wording; other users read the short reason with
	// KerberosReason.
	Service string
}

// Kerberos is an Authenticator that sends SPNEGO ("Authorization:
// Negotiate ...") with a service ticket for HTTP/<host of the request>,
// obtained with the keys of a keytab. It logs in when it first needs a
// ticket, and gets a new ticket-granting ticket and new service tickets
// once two thirds of their lifetime has passed, so a ticket is never used
// near its end; while the KDC cannot be reached, a ticket that is still
// valid keeps being used. Every failure wraps ErrUnavailable; its text,
// which callers see, is "FASJSON unavailable (Kerberos: <short reason>)"
// and names no principal, service principal, KDC or file: those are in the
// log record Authenticate writes (never a key). Its methods are safe for
// concurrent use.
type Kerberos struct {
	opts KerberosOptions
	log  *slog.Logger

	mu      sync.Mutex
	cl      *client.Client // the client of the last login
	tgt     *ticket
	service map[string]*ticket // by service principal name
}

// ticket is a Kerberos ticket with its session key and validity.
type ticket struct {
	tkt        messages.Ticket
	key        types.EncryptionKey
	start, end time.Time
}

// fresh reports whether t need not be replaced yet: less than two thirds
// of its lifetime has passed.
func (t *ticket) fresh(now time.Time) bool {
	return t != nil && now.Before(t.start.Add(t.end.Sub(t.start)*2/3))
}

// usable reports whether t can still be sent: it ends more than a few
// seconds from now (a sixth of its lifetime, at most 10 s), so it does not
// expire on its way to the server.
func (t *ticket) usable(now time.Time) bool {
	if t == nil {
		return false
	}
	margin := min(t.end.Sub(t.start)/6, 10*time.Second)
	return now.Add(margin).Before(t.end)
}

// kerberosError is a Kerberos failure. Its text is for the caller of a
// command: a short reason naming no principal, SPN, KDC or file; detail,
// for the log, says exactly what failed.
type kerberosError struct {
	reason string
	detail string
}

func (e *kerberosError) Error() string {
	return ErrUnavailable.Error() + " (Kerberos: " + e.reason + ")"
}

func (e *kerberosError) Unwrap() error { return ErrUnavailable }

// krbFail builds a kerberosError with the short reason and the detail
// format and args.
func krbFail(reason, format string, args ...any) error {
	return &kerberosError{reason: reason, detail: "kerberos: " + fmt.Sprintf(format, args...)}
}

// KerberosReason returns the short reason of a failure of Kerberos's
// Authenticate ("cannot reach a KDC", "clock skew: ..."), which names no
// principal, service principal, KDC or file, and whether err is one.
func KerberosReason(err error) (string, bool) {
	var ke *kerberosError
	if errors.As(err, &ke) {
		return ke.reason, true
	}
	return "", false
}

// kerberosDetail is what the log says of err: the detail of a Kerberos
// failure, else its text.
func kerberosDetail(err error) string {
	var ke *kerberosError
	if errors.As(err, &ke) {
		return ke.detail
	}
	return err.Error()
}

// NewKerberos returns a Kerberos authenticator. It checks only that a
// keytab is named; the keytab, krb5.conf and KDC are first used by
// Authenticate, so a KDC that is down at start-up makes FASJSON unavailable
// rather than stopping the bot.
func NewKerberos(opts KerberosOptions) (*Kerberos, error) {
	if opts.Keytab == "" {
		return nil, errors.New("kerberos: no keytab configured (acl.keytab)")
	}
	if opts.Service == "" {
		opts.Service = "FASJSON"
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Kerberos{opts: opts, log: log, service: map[string]*ticket{}}, nil
}

// Authenticate implements Authenticator: it sets a SPNEGO Negotiate header
// for the service principal HTTP/<host> of req.URL. The error wraps
// ErrUnavailable, reads "FASJSON unavailable (Kerberos: <short reason>)",
// and its detail is logged.
func (k *Kerberos) Authenticate(req *http.Request) error {
	err := k.authenticate(req)
	if err != nil {
		k.log.Warn("kerberos: cannot authenticate to "+k.opts.Service, "host", req.URL.Host, "err", kerberosDetail(err))
	}
	return err
}

func (k *Kerberos) authenticate(req *http.Request) error {
	host := strings.ToLower(strings.TrimSuffix(req.URL.Hostname(), "."))
	if host == "" {
		return krbFail("the request has no host", "the request has no host")
	}
	spn := "HTTP/" + host
	k.mu.Lock()
	defer k.mu.Unlock()
	st, err := k.serviceTicket(spn, host)
	if err != nil {
		return err
	}
	tok, err := spnego.NewNegTokenInitKRB5(k.cl, st.tkt, st.key)
	if err != nil {
		return krbFail("cannot build the SPNEGO token", "building the SPNEGO token for %s: %v", spn, err)
	}
	b, err := (&spnego.SPNEGOToken{Init: true, NegTokenInit: tok}).Marshal()
	if err != nil {
		return krbFail("cannot build the SPNEGO token", "encoding the SPNEGO token for %s: %v", spn, err)
	}
	req.Header.Set("Authorization", "Negotiate "+base64.StdEncoding.EncodeToString(b))
	return nil
}

// Close forgets the tickets.
func (k *Kerberos) Close() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.tgt, k.cl = nil, nil
	clear(k.service)
}

// serviceTicket returns a usable ticket for spn, getting a new one when
// the cached one is past two thirds of its life. k.mu is held.
func (k *Kerberos) serviceTicket(spn, host string) (*ticket, error) {
	now := time.Now()
	old := k.service[spn]
	if old.fresh(now) {
		return old, nil
	}
	st, err := k.newServiceTicket(spn, host)
	if err != nil {
		if old.usable(now) {
			k.log.Warn("kerberos: cannot renew the service ticket, using the current one", "spn", spn, "ends", old.end, "err", kerberosDetail(err))
			return old, nil
		}
		return nil, err
	}
	k.service[spn] = st
	k.log.Debug("kerberos: service ticket", "spn", spn, "ends", st.end)
	return st, nil
}

// newServiceTicket asks the KDC for a ticket for spn (a TGS exchange).
func (k *Kerberos) newServiceTicket(spn, host string) (*ticket, error) {
	tgt, err := k.ticketGrantingTicket()
	if err != nil {
		return nil, err
	}
	realm := k.cl.Config.ResolveRealm(host)
	if realm == "" {
		realm = k.cl.Credentials.Realm()
	}
	princ := types.NewPrincipalName(nametype.KRB_NT_PRINCIPAL, spn)
	_, rep, err := k.cl.TGSREQGenerateAndExchange(princ, realm, tgt.tkt, tgt.key, false)
	if err != nil {
		return nil, krbFail(kerberosReason(err, "no ticket for "+k.opts.Service+"'s service"), "ticket for %s@%s: %s", spn, realm, describeKerberos(err))
	}
	return &ticket{tkt: rep.Ticket, key: rep.DecryptedEncPart.Key, start: startOf(rep.DecryptedEncPart), end: rep.DecryptedEncPart.EndTime}, nil
}

// ticketGrantingTicket returns a usable TGT, logging in again with the
// keytab once the current one is past two thirds of its life. k.mu is held.
func (k *Kerberos) ticketGrantingTicket() (*ticket, error) {
	now := time.Now()
	if k.tgt.fresh(now) {
		return k.tgt, nil
	}
	cl, tgt, err := k.login()
	if err != nil {
		if k.tgt.usable(now) {
			k.log.Warn("kerberos: cannot renew the ticket-granting ticket, using the current one", "ends", k.tgt.end, "err", kerberosDetail(err))
			return k.tgt, nil
		}
		return nil, err
	}
	// Service tickets of the old login stay valid; they are replaced as
	// they age, from the new TGT.
	k.cl, k.tgt = cl, tgt
	k.log.Info("kerberos: logged in", "principal", cl.Credentials.CName().PrincipalNameString()+"@"+cl.Credentials.Realm(), "ends", tgt.end)
	return tgt, nil
}

// login reads krb5.conf and the keytab and does an AS exchange.
func (k *Kerberos) login() (*client.Client, *ticket, error) {
	text, err := os.ReadFile(k.opts.Krb5Conf)
	if err != nil {
		return nil, nil, krbFail("the krb5 configuration "+fileProblem(err), "krb5 configuration %s: %s", k.opts.Krb5Conf, fileProblem(err))
	}
	conf, err := krbconfig.NewFromString(string(text))
	if err != nil {
		return nil, nil, krbFail("the krb5 configuration is not valid", "krb5 configuration %s: %v", k.opts.Krb5Conf, err)
	}
	raw, err := os.ReadFile(k.opts.Keytab)
	if err != nil {
		return nil, nil, krbFail("the keytab "+fileProblem(err), "keytab %s: %s", k.opts.Keytab, fileProblem(err))
	}
	kt := keytab.New()
	if len(raw) == 2 && raw[0] == 0x05 {
		return nil, nil, krbFail("the keytab holds no keys", "keytab %s: holds no keys", k.opts.Keytab)
	}
	if err := kt.Unmarshal(raw); err != nil {
		// gokrb5's parse errors describe the layout, never the keys.
		return nil, nil, krbFail("the keytab is not valid", "keytab %s: not a valid keytab: %v", k.opts.Keytab, err)
	}
	name, realm, err := pickPrincipal(k.opts.Principal, kt, conf.LibDefaults.DefaultRealm)
	if err != nil {
		return nil, nil, krbFail("the keytab holds no key for the bot's principal", "keytab %s: %v", k.opts.Keytab, err)
	}
	who := name + "@" + realm
	cl := client.NewWithKeytab(name, realm, kt, conf, client.DisablePAFXFAST(true))
	if ok, err := cl.IsConfigured(); !ok {
		return nil, nil, krbFail(kerberosReason(err, "the krb5 configuration is incomplete"), "%s: %s", who, describeKerberos(err))
	}
	req, err := messages.NewASReqForTGT(realm, conf, cl.Credentials.CName())
	if err != nil {
		return nil, nil, krbFail(kerberosReason(err, "login failed"), "login as %s: %s", who, describeKerberos(err))
	}
	rep, err := cl.ASExchange(realm, req, 0)
	if err != nil {
		return nil, nil, krbFail(kerberosReason(err, "login failed"), "login as %s: %s", who, describeKerberos(err))
	}
	dep := rep.DecryptedEncPart
	return cl, &ticket{tkt: rep.Ticket, key: dep.Key, start: startOf(dep), end: dep.EndTime}, nil
}

// startOf is when a ticket's validity began: its start time, or its
// authentication time when the KDC gave no start time.
func startOf(p messages.EncKDCRepPart) time.Time {
	if p.StartTime.IsZero() {
		return p.AuthTime
	}
	return p.StartTime
}

// pickPrincipal splits want ("name[@REALM]") into name and realm, or takes
// the keytab's first principal when want is empty, and checks that the
// keytab holds a key for it.
func pickPrincipal(want string, kt *keytab.Keytab, defaultRealm string) (name, realm string, err error) {
	if len(kt.Entries) == 0 {
		return "", "", errors.New("holds no keys")
	}
	if want == "" {
		p := kt.Entries[0].Principal
		return strings.Join(p.Components, "/"), p.Realm, nil
	}
	name, realm = want, defaultRealm
	if i := strings.LastIndex(want, "@"); i >= 0 {
		name, realm = want[:i], want[i+1:]
	}
	if realm == "" {
		realm = kt.Entries[0].Principal.Realm
	}
	for _, e := range kt.Entries {
		if e.Principal.Realm == realm && strings.Join(e.Principal.Components, "/") == name {
			return name, realm, nil
		}
	}
	return "", "", fmt.Errorf("holds no key for %s@%s", name, realm)
}

// fileProblem says briefly why a file could not be used.
func fileProblem(err error) string {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "does not exist"
	case errors.Is(err, fs.ErrPermission):
		return "cannot be read (permission denied)"
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// kerberosCauses maps what gokrb5 and the KDC say to a short reason an
// operator can act on, most specific first. This is the one place kojibot
// reads an error's text: gokrb5 folds the KDC's KRB-ERROR into its
// message (krberror.Errorf keeps no typed cause), so the KDC's codes are
// matched by their RFC 4120 names, which the protocol fixes, and gokrb5's
// root-cause names; an unmatched error keeps the fallback reason.
var kerberosCauses = []struct{ marker, reason string }{
	{"KRB_AP_ERR_SKEW", "clock skew: this machine's clock and the KDC's differ too much"},
	{"KDC_ERR_PREAUTH_FAILED", "the KDC refused the keytab's key (wrong or outdated key)"},
	{"KRB_AP_ERR_BAD_INTEGRITY", "the KDC refused the keytab's key (wrong or outdated key)"},
	{"KDC_ERR_C_PRINCIPAL_UNKNOWN", "the principal is unknown to the KDC"},
	{"KDC_ERR_S_PRINCIPAL_UNKNOWN", "the service principal is unknown to the KDC"},
	{"KDC_ERR_CLIENT_REVOKED", "the principal is disabled or locked"},
	{"KDC_ERR_KEY_EXPIRED", "the principal's key has expired"},
	{"KRB_AP_ERR_TKT_EXPIRED", "the ticket has expired"},
	{"KDC_ERR_ETYPE_NOSUPP", "no encryption type in common with the KDC"},
	{"matching key not found in keytab", "the keytab has no key of the kind the KDC asks for (wrong or outdated keytab)"},
	{"Decrypting_Error", "cannot decrypt the KDC's answer with the keytab's key (wrong or outdated key)"},
	{"Networking_Error", "cannot reach a KDC"},
	{"Configuration_Error", "the krb5 configuration is incomplete"},
}

// kerberosReason is the short reason for a gokrb5 error (kerberosCauses),
// or fallback when none matches: never gokrb5's text, which names KDCs and
// principals.
func kerberosReason(err error, fallback string) string {
	if err != nil {
		text := err.Error()
		for _, c := range kerberosCauses {
			if strings.Contains(text, c.marker) {
				return c.reason
			}
		}
	}
	return fallback
}

// describeKerberos turns a gokrb5 error into a short reason followed by
// gokrb5's own text (which carries KDC names and error codes, no keys).
func describeKerberos(err error) string {
	if err == nil {
		return "unknown error"
	}
	text := err.Error()
	for _, c := range kerberosCauses {
		if strings.Contains(text, c.marker) {
			return c.reason + " (" + clean(text) + ")"
		}
	}
	return clean(text)
}
