// Package realkoji runs the upstream Koji hub for kojibot's tests: the
// release's kojihub under Apache (prefork) with mod_wsgi, mod_ssl and
// mod_auth_gssapi (GSSAPI and certificate login on /kojihub/ssllogin),
// against a throwaway PostgreSQL cluster loaded with the release's own
// schema.sql, with a KDC and a test CA. It also runs the release's koji CLI
// and speaks the hub's XML-RPC API, so that tests seed the hub only through
// the API, as Koji's admin, and every row is one Koji itself wrote.
// Everything lives in temporary directories, listens on loopback and is
// stopped by PID; nothing here needs a *testing.T.
package realkoji

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fedora-infra/kojibot/tests/harness"
	"github.com/fedora-infra/kojibot/tests/harness/kdc"
	"github.com/fedora-infra/kojibot/tests/harness/pgsql"
)

// Names the hub is set up with.
const (
	// DBName is the hub's database, reset from TemplateDB by Reset.
	DBName = "koji"
	// TemplateDB holds upstream's schema.sql and the admin user.
	TemplateDB = "koji_tmpl"
	// Admin is Koji's bootstrap administrator (user and principal name).
	Admin = "admin"
	// ServiceHost is the host name clients must use: the hub's principal
	// is HTTP/ServiceHost and its certificate is for it.
	ServiceHost = "localhost"
	// Python is the interpreter of the CLI, the one mod_wsgi embeds.
	Python = "/usr/bin/python3"
	// apacheWorkers is how many prefork children serve the hub.
	apacheWorkers = 3
)

// Hub is a running Koji hub with its database, realm and CA.
type Hub struct {
	// Dir is the temporary directory everything lives in.
	Dir string
	// Src is the unpacked Koji tree the hub, the CLI and schema.sql come from.
	Src string
	// URL is https://localhost:port/kojihub.
	URL string
	// PG is the hub's PostgreSQL cluster.
	PG *pgsql.Cluster
	// KDC is the realm (kdc.Realm) of the hub, its users and hosts.
	KDC *kdc.KDC

	pki    *pki
	proc   *os.Process
	exited chan struct{}

	mu     sync.Mutex
	princs map[string]string // principal (without realm) -> keytab
	certs  map[string]tls.Certificate
}

// Start finds and unpacks the Koji source (see Source), then starts
// PostgreSQL with a template database made from the release's schema.sql,
// a KDC, a CA, and Apache serving kojihub, and returns once the hub
// answers. The hub's database is fresh: Koji's admin only, as after
// upstream's bootstrap. The caller stops everything with Close.
func Start(ctx context.Context) (_ *Hub, err error) {
	dir, err := os.MkdirTemp("", "kojibot-kojihub-")
	if err != nil {
		return nil, err
	}
	h := &Hub{Dir: dir, princs: map[string]string{}, certs: map[string]tls.Certificate{}}
	defer func() {
		if err != nil {
			h.Close()
		}
	}()
	// Apache runs as www-data and reads the tree, hub.conf and the keytab.
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	if err := harness.Traversable(dir); err != nil {
		return nil, err
	}
	if h.Src, err = Source(ctx, filepath.Join(dir, "src")); err != nil {
		return nil, err
	}
	type result struct {
		what string
		err  error
	}
	results := make(chan result, 3)
	go func() {
		pgDir := filepath.Join(dir, "pg")
		if err := os.Mkdir(pgDir, 0o700); err != nil {
			results <- result{"postgres", err}
			return
		}
		c, err := pgsql.Start(ctx, pgDir)
		if err == nil {
			h.PG = c
			err = h.loadTemplate(ctx)
		}
		results <- result{"postgres", err}
	}()
	go func() {
		k, err := kdc.StartKDC()
		if err == nil {
			h.KDC = k
			err = h.kerberos()
		}
		results <- result{"kdc", err}
	}()
	go func() {
		p, err := newPKI(filepath.Join(dir, "pki"))
		if err == nil {
			h.pki = p
			_, err = p.issue("server", ServiceHost, true)
		}
		results <- result{"pki", err}
	}()
	var errs []error
	for range 3 {
		if r := <-results; r.err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", r.what, r.err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("realkoji: %w", err)
	}
	if err := h.Reset(ctx); err != nil {
		return nil, err
	}
	// Another process may take the port between FreePort and Apache's
	// bind: try a few.
	for range 3 {
		if err = h.startApache(ctx); err == nil || !strings.Contains(err.Error(), "Address already in use") {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	return h, nil
}

// loadTemplate creates the hub's role and TemplateDB from the release's
// schema.sql, bootstraps the admin user the way upstream's docs do (one
// users row with a Kerberos principal and the admin permission: the only
// rows not written through the hub), and gives the bot's database role
// (pgsql.BotRole) the grants of docs/koji-db-grants.sql.
func (h *Hub) loadTemplate(ctx context.Context) error {
	schema, err := os.ReadFile(filepath.Join(h.Src, "schemas", "schema.sql"))
	if err != nil {
		return err
	}
	admin, err := pgx.Connect(ctx, h.PG.AdminDSN("postgres"))
	if err != nil {
		return err
	}
	defer admin.Close(context.Background())
	for _, q := range []string{
		fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s'", pgsql.HubRole, pgsql.HubPassword),
		fmt.Sprintf("CREATE DATABASE %s OWNER %s", TemplateDB, pgsql.HubRole),
	} {
		if _, err := admin.Exec(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	conn, err := pgx.Connect(ctx, h.dsn(pgsql.HubRole, pgsql.HubPassword, TemplateDB))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, string(schema)); err != nil {
		return fmt.Errorf("schema.sql: %w", err)
	}
	if _, err := conn.Exec(ctx, `WITH u AS (INSERT INTO users (name, status, usertype) VALUES ($1, 0, 0) RETURNING id)
		INSERT INTO user_krb_principals (user_id, krb_principal) SELECT id, $2 FROM u`, Admin, Admin+"@"+kdc.Realm); err != nil {
		return fmt.Errorf("admin user: %w", err)
	}
	if _, err := conn.Exec(ctx, `INSERT INTO user_perms (user_id, perm_id, creator_id)
		SELECT u.id, p.id, u.id FROM users u, permissions p WHERE u.name = $1 AND p.name = 'admin'`, Admin); err != nil {
		return fmt.Errorf("admin permission: %w", err)
	}
	dsns := pgsql.DSNs{Admin: h.PG.AdminDSN(TemplateDB), Database: TemplateDB}
	if _, err := dsns.GrantRole(ctx, h.PG, pgsql.BotRole, pgsql.BotPassword); err != nil {
		return err
	}
	return nil
}

func (h *Hub) dsn(user, password, db string) string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword(user, password),
		Host: "127.0.0.1:" + strconv.Itoa(h.PG.Port()), Path: "/" + db, RawQuery: "sslmode=disable"}
	return u.String()
}

// HubDSN is the hub's own connection to its database (the tables' owner).
func (h *Hub) HubDSN() string { return h.dsn(pgsql.HubRole, pgsql.HubPassword, DBName) }

// BotDSN is the hub's database as the bot's role, with the grants of
// docs/koji-db-grants.sql.
func (h *Hub) BotDSN() string { return h.dsn(pgsql.BotRole, pgsql.BotPassword, DBName) }

// AdminDSN is the hub's database as the cluster's superuser.
func (h *Hub) AdminDSN() string { return h.PG.AdminDSN(DBName) }

// Reset gives the hub a fresh database: a copy of TemplateDB, with the
// admin only. The hub's open connections are cut; it reconnects by itself.
func (h *Hub) Reset(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, h.PG.AdminDSN("postgres"))
	if err != nil {
		return fmt.Errorf("realkoji: reset: %w", err)
	}
	defer conn.Close(context.Background())
	for _, q := range []string{
		"DROP DATABASE IF EXISTS " + DBName + " WITH (FORCE)",
		"CREATE DATABASE " + DBName + " TEMPLATE " + TemplateDB + " OWNER " + pgsql.HubRole,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("realkoji: reset: %s: %w", q, err)
		}
	}
	return nil
}

// kerberos creates the hub's service principal and keytab, and the admin's.
func (h *Hub) kerberos() error {
	krb := filepath.Join(h.Dir, "krb")
	if err := os.MkdirAll(filepath.Join(krb, "rcache"), 0o755); err != nil {
		return err
	}
	spn := "HTTP/" + ServiceHost
	if err := h.KDC.AddPrincipal(spn, 0); err != nil {
		return err
	}
	if err := h.KDC.Keytab(filepath.Join(krb, "http.keytab"), spn); err != nil {
		return err
	}
	if err := os.Chmod(filepath.Join(krb, "http.keytab"), 0o600); err != nil {
		return err
	}
	if err := harness.Chown(krb, "www-data"); err != nil {
		return err
	}
	_, err := h.Keytab(Admin)
	return err
}

// Keytab returns a keytab for principal name (without realm; created in
// the realm on first use), for the CLI or a kojid.
func (h *Hub) Keytab(name string) (string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if kt, ok := h.princs[name]; ok {
		return kt, nil
	}
	if err := h.KDC.AddPrincipal(name, 0); err != nil {
		return "", err
	}
	kt := filepath.Join(h.Dir, "krb", strings.ReplaceAll(name, "/", "_")+".keytab")
	if err := h.KDC.Keytab(kt, name); err != nil {
		return "", err
	}
	h.princs[name] = kt
	return kt, nil
}

// Principal is name@kdc.Realm.
func Principal(name string) string { return name + "@" + kdc.Realm }

// HostPrincipal is the principal the hub expects of host name
// (HostPrincipalFormat), e.g. compile/ppc3.fedora.redhat.com.
func HostPrincipal(name string) string { return "compile/" + name }

// CACert is the CA certificate that signed the hub's and the clients'
// certificates.
func (h *Hub) CACert() string { return h.pki.caPath() }

// Cert returns the path of a PEM file holding a client certificate with
// CN=name followed by its key (made on first use), for the CLI or kojid.
func (h *Hub) Cert(name string) (string, error) {
	if _, err := h.certFor(name); err != nil {
		return "", err
	}
	return filepath.Join(h.pki.dir, "user-"+certFile(name)+".pem"), nil
}

func certFile(name string) string { return strings.ReplaceAll(name, "/", "_") }

func (h *Hub) certFor(name string) (tls.Certificate, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if c, ok := h.certs[name]; ok {
		return c, nil
	}
	c, err := h.pki.issue("user-"+certFile(name), name, false)
	if err != nil {
		return tls.Certificate{}, err
	}
	h.certs[name] = c
	return c, nil
}

// Anonymous is a client without a session.
func (h *Hub) Anonymous() *Client { return newClient(h.URL, h.pki.pool, nil) }

// Login opens a session as Koji user or host name, by certificate
// (sslLogin with CN=name); kw are sslLogin's keyword arguments (exclusive),
// or nil.
func (h *Hub) Login(ctx context.Context, name string, kw Kwargs) (*Client, error) {
	cert, err := h.certFor(name)
	if err != nil {
		return nil, err
	}
	c := newClient(h.URL, h.pki.pool, &cert)
	if err := c.SSLLogin(ctx, kw); err != nil {
		return nil, fmt.Errorf("realkoji: login as %s: %w", name, err)
	}
	return c, nil
}

// AdminClient is a session of Koji's admin.
func (h *Hub) AdminClient(ctx context.Context) (*Client, error) { return h.Login(ctx, Admin, nil) }

// startApache writes hub.conf and Apache's configuration and starts Apache
// in the foreground, as www-data when root, with its ServerRoot, PidFile,
// logs and ports in the hub's directory: nothing of the system's Apache is
// read or written.
func (h *Hub) startApache(ctx context.Context) error {
	port, err := harness.FreePort()
	if err != nil {
		return err
	}
	h.URL = fmt.Sprintf("https://%s:%d/kojihub", ServiceHost, port)
	ap := filepath.Join(h.Dir, "apache")
	etc := filepath.Join(h.Dir, "etc")
	kojiDir := filepath.Join(h.Dir, "mnt", "koji")
	for _, d := range []string{filepath.Join(ap, "run"), filepath.Join(etc, "hub.conf.d")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	for _, d := range []string{"packages", "repos", "repos-dist", "work", "scratch"} {
		if err := os.MkdirAll(filepath.Join(kojiDir, d), 0o755); err != nil {
			return err
		}
	}
	hubConf := fmt.Sprintf(`[hub]
DBName = %s
DBUser = %s
DBPass = %s
DBHost = 127.0.0.1
DBPort = %d
KojiDir = %s
LoginCreatesUser = Off
HostPrincipalFormat = compile/%%s@%s
AllowedKrbRealms = %s
DisableNotifications = True
KojiTraceback = normal
LogLevel = INFO
; the task scheduler runs every second (default 60), so that a kojid takes a
; task within a few seconds
RunInterval = 1
`, DBName, pgsql.HubRole, pgsql.HubPassword, h.PG.Port(), kojiDir, kdc.Realm, kdc.Realm)
	if err := os.WriteFile(filepath.Join(etc, "hub.conf"), []byte(hubConf), 0o644); err != nil {
		return err
	}
	var mods strings.Builder
	for _, m := range []string{"mpm_prefork", "authn_core", "authz_core", "authz_user", "alias", "env",
		"socache_shmcb", "ssl", "auth_gssapi", "wsgi"} {
		fmt.Fprintf(&mods, "LoadModule %s_module /usr/lib/apache2/modules/mod_%s.so\n", m, m)
	}
	pk := h.pki.dir
	conf := fmt.Sprintf(`ServerRoot "%[1]s"
ServerName %[2]s
Listen 127.0.0.1:%[3]d
PidFile "%[1]s/run/httpd.pid"
DefaultRuntimeDir "%[1]s/run"
Mutex file:%[1]s/run default
ErrorLog "%[1]s/error.log"
LogLevel warn auth_gssapi:info
LogFormat "%%h %%u \"%%r\" %%>s %%D" brief
CustomLog "%[1]s/access.log" brief
%[4]s
StartServers %[9]d
MinSpareServers 1
MaxSpareServers %[9]d
ServerLimit %[9]d
MaxRequestWorkers %[9]d
# A kept-alive connection holds a prefork child: with few children, idle
# clients would make the others wait for KeepAliveTimeout.
KeepAlive Off
SSLSessionCache "shmcb:%[1]s/run/ssl_scache(512000)"

WSGIPythonPath "%[5]s"
Alias /kojihub "%[5]s/kojihub/app/kojiapp.py"
<Directory "%[5]s/kojihub/app">
    Options ExecCGI
    SetHandler wsgi-script
    WSGIApplicationGroup %%{GLOBAL}
    SetEnv koji.hub.ConfigFile "%[6]s/hub.conf"
    SetEnv koji.hub.ConfigDir "%[6]s/hub.conf.d"
    Require all granted
</Directory>

<VirtualHost 127.0.0.1:%[3]d>
    SSLEngine on
    SSLCertificateFile "%[7]s/server.crt"
    SSLCertificateKeyFile "%[7]s/server.key"
    SSLCACertificateFile "%[7]s/ca.crt"
    # Asked in the handshake: TLS 1.3 cannot renegotiate for one location.
    SSLVerifyClient optional
    SSLVerifyDepth 2
    <Location /kojihub/ssllogin>
        SSLOptions +StdEnvVars
        AuthType GSSAPI
        AuthName "Koji"
        GssapiCredStore keytab:%[8]s/http.keytab
        GssapiAllowedMech krb5
        GssapiBasicAuth Off
        <RequireAny>
            Require ssl-verify-client
            Require valid-user
        </RequireAny>
    </Location>
</VirtualHost>
`, ap, ServiceHost, port, mods.String(), h.Src, etc, pk, filepath.Join(h.Dir, "krb"), apacheWorkers)
	confPath := filepath.Join(ap, "httpd.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return err
	}
	for _, p := range []string{ap, kojiDir, filepath.Join(pk, "server.key")} {
		if err := harness.Chown(p, "www-data"); err != nil {
			return err
		}
	}
	cmd := exec.Command("/usr/sbin/apache2", "-f", confPath, "-D", "FOREGROUND")
	cmd.Dir = ap
	cmd.Env = append(os.Environ(), "KRB5_CONFIG="+h.KDC.Krb5Conf,
		"KRB5RCACHEDIR="+filepath.Join(h.Dir, "krb", "rcache"), "LANG=C.UTF-8")
	out, err := os.Create(filepath.Join(ap, "apache2.out"))
	if err != nil {
		return err
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	if err := harness.AsUser(cmd, "www-data"); err != nil {
		return err
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	// Its own process group, killed with the test binary.
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	if err := harness.Spawn(cmd); err != nil {
		return fmt.Errorf("realkoji: apache2: %w", err)
	}
	h.proc = cmd.Process
	h.exited = make(chan struct{})
	go func() { _ = cmd.Wait(); close(h.exited) }()
	anon := h.Anonymous()
	var last error
	up := harness.WaitFor(ctx, 30*time.Second, func() bool {
		select {
		case <-h.exited:
			return true
		default:
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		var v int64
		if v, last = anon.Int(cctx, "getAPIVersion"); last == nil && v == 1 {
			return true
		}
		return false
	})
	select {
	case <-h.exited:
		return fmt.Errorf("realkoji: apache2 exited: %s", h.Logs())
	default:
	}
	if !up {
		return fmt.Errorf("realkoji: the hub does not answer on %s (%v): %s", h.URL, last, h.Logs())
	}
	return nil
}

// ApacheServiceLine is a shell command line that runs the hub's Apache
// (the configuration Start wrote, same port) as a machine's service, as
// root inside that machine: Apache drops its children to www-data, and its
// output is appended to the same file as before. Stop the Apache of Start
// first (StopApache).
func (h *Hub) ApacheServiceLine() string {
	ap := filepath.Join(h.Dir, "apache")
	q := func(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
	return fmt.Sprintf("cd %s && exec env KRB5_CONFIG=%s KRB5RCACHEDIR=%s LANG=C.UTF-8 /usr/sbin/apache2 -f %s -D FOREGROUND -C 'User www-data' -C 'Group www-data' >>%s 2>&1",
		q(ap), q(h.KDC.Krb5Conf), q(filepath.Join(h.Dir, "krb", "rcache")), q(filepath.Join(ap, "httpd.conf")), q(filepath.Join(ap, "apache2.out")))
}

// StopApache stops the Apache that Start runs (its process group, by
// PID), so that a machine's service runs the hub instead
// (ApacheServiceLine); Close then leaves Apache to that machine.
func (h *Hub) StopApache() {
	if h.proc == nil {
		return
	}
	_ = syscall.Kill(-h.proc.Pid, syscall.SIGTERM)
	select {
	case <-h.exited:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-h.proc.Pid, syscall.SIGKILL)
		<-h.exited
	}
	h.proc = nil
}

// WaitUp waits until the hub answers (getAPIVersion) within timeout.
func (h *Hub) WaitUp(ctx context.Context, timeout time.Duration) error {
	anon := h.Anonymous()
	var last error
	up := harness.WaitFor(ctx, timeout, func() bool {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		var v int64
		v, last = anon.Int(cctx, "getAPIVersion")
		return last == nil && v == 1
	})
	if !up {
		return fmt.Errorf("realkoji: the hub does not answer on %s (%v): %s", h.URL, last, h.Logs())
	}
	return nil
}

// Logs returns the end of Apache's output and error log (the hub logs
// there), for a failure message.
func (h *Hub) Logs() string {
	ap := filepath.Join(h.Dir, "apache")
	a, _ := os.ReadFile(filepath.Join(ap, "apache2.out"))
	b, _ := os.ReadFile(filepath.Join(ap, "error.log"))
	s := strings.TrimSpace(string(a) + "\n" + string(b))
	if len(s) > 6000 {
		s = s[len(s)-6000:]
	}
	return s
}

// CLI runs the release's koji CLI (with the system python3, the tree on
// PYTHONPATH) as Kerberos principal name (without realm), with a keytab
// made for it, and returns its standard output. A failure's error holds
// its standard error.
func (h *Hub) CLI(ctx context.Context, name string, args ...string) (string, error) {
	kt, err := h.Keytab(name)
	if err != nil {
		return "", err
	}
	conf, err := h.cliConf()
	if err != nil {
		return "", err
	}
	// A credential cache of its own, which must not exist yet (an empty
	// file is not a cache).
	ccDir, err := os.MkdirTemp(h.Dir, "ccache-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(ccDir)
	full := append([]string{filepath.Join(h.Src, "cli", "koji"), "-c", conf,
		"--principal", Principal(name), "--keytab", kt}, args...)
	cmd := exec.CommandContext(ctx, Python, full...)
	cmd.Env = append(os.Environ(),
		"PYTHONPATH="+h.Src+":"+filepath.Join(h.Src, "cli"),
		"KRB5_CONFIG="+h.KDC.Krb5Conf,
		"KRB5CCNAME=FILE:"+filepath.Join(ccDir, "cc"),
		"PYTHONDONTWRITEBYTECODE=1",
		"LANG=C.UTF-8", "TZ=UTC")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("realkoji: koji %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// cliConf writes (once) and returns the koji.conf of CLI and ShellCommand.
func (h *Hub) cliConf() (string, error) {
	conf := filepath.Join(h.Dir, "koji.conf")
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, err := os.Stat(conf); err == nil {
		return conf, nil
	}
	text := fmt.Sprintf("[koji]\nserver = %s\nserverca = %s\nauthtype = kerberos\nweburl = %s\ntopdir = %s\npoll_interval = 1\n",
		h.URL, h.CACert(), strings.TrimSuffix(h.URL, "hub"), filepath.Join(h.Dir, "mnt", "koji"))
	return conf, os.WriteFile(conf, []byte(text), 0o644)
}

// ShellCommand is a shell command line that runs the release's CLI
// against the hub without logging in (reads only: list-hosts,
// list-history, list-tagged...), for a person to paste.
func (h *Hub) ShellCommand() (string, error) {
	conf, err := h.cliConf()
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("PYTHONPATH=%s:%s %s %s -c %s --noauth", h.Src, filepath.Join(h.Src, "cli"), Python,
		filepath.Join(h.Src, "cli", "koji"), conf), nil
}

// ReadCLI runs the release's CLI as ShellCommand does (no login: reads
// only) with args and returns its standard output.
func (h *Hub) ReadCLI(ctx context.Context, args ...string) (string, error) {
	conf, err := h.cliConf()
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, Python, append([]string{filepath.Join(h.Src, "cli", "koji"), "-c", conf, "--noauth"}, args...)...)
	cmd.Env = append(os.Environ(), "PYTHONPATH="+h.Src+":"+filepath.Join(h.Src, "cli"),
		"PYTHONDONTWRITEBYTECODE=1", "LANG=C.UTF-8", "TZ=UTC")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("realkoji: koji %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// CertCLI writes into dir a koji.conf for the release's CLI that logs in
// by certificate as Koji user name, with a copy of the certificate owned
// by uid:gid (the account that will run the CLI), and returns the command
// line and environment that run the CLI with it.
func (h *Hub) CertCLI(dir, name string, uid, gid int) (argv, env []string, err error) {
	pem, err := h.Cert(name)
	if err != nil {
		return nil, nil, err
	}
	b, err := os.ReadFile(pem)
	if err != nil {
		return nil, nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, err
	}
	certCopy := filepath.Join(dir, certFile(name)+".pem")
	if err := os.WriteFile(certCopy, b, 0o600); err != nil {
		return nil, nil, err
	}
	if os.Geteuid() == 0 {
		if err := os.Chown(certCopy, uid, gid); err != nil {
			return nil, nil, err
		}
	}
	conf := filepath.Join(dir, "koji.conf")
	text := fmt.Sprintf("[koji]\nserver = %s\nserverca = %s\nauthtype = ssl\ncert = %s\nweburl = %s\npoll_interval = 1\n",
		h.URL, h.CACert(), certCopy, strings.TrimSuffix(h.URL, "hub"))
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		return nil, nil, err
	}
	argv = []string{Python, filepath.Join(h.Src, "cli", "koji"), "-c", conf}
	env = []string{"PYTHONPATH=" + h.Src + ":" + filepath.Join(h.Src, "cli"), "PYTHONDONTWRITEBYTECODE=1", "LANG=C.UTF-8"}
	return argv, env, nil
}

// Close stops Apache (its process group), the KDC and PostgreSQL, and
// removes the hub's directory.
func (h *Hub) Close() {
	if h.proc != nil {
		_ = syscall.Kill(-h.proc.Pid, syscall.SIGTERM)
		select {
		case <-h.exited:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-h.proc.Pid, syscall.SIGKILL)
			<-h.exited
		}
		h.proc = nil
	}
	if h.KDC != nil {
		h.KDC.Close()
	}
	if h.PG != nil {
		h.PG.Stop()
	}
	_ = os.RemoveAll(h.Dir)
}
