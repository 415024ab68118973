package kdc

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fedora-infra/kojibot/tests/harness"
)

// ServiceHost is the host name Apache serves under: its principal is
// HTTP/ServiceHost@Realm, and clients must use it in URLs.
const ServiceHost = "localhost"

// apacheModules is where Debian's apache2 keeps its modules.
const apacheModules = "/usr/lib/apache2/modules"

// RemoteUserHeader is the request header in which Apache tells the backend
// who authenticated, the way a GSSAPI-protected application learns it.
const RemoteUserHeader = "X-Remote-User"

// HTTPD is a running Apache httpd that requires a Kerberos ticket
// (mod_auth_gssapi, SPNEGO) for every request and passes authenticated
// requests to a backend as a reverse proxy.
type HTTPD struct {
	// Dir holds the configuration, the service keytab and the logs.
	Dir string
	// URL is http://ServiceHost:port, the address clients use.
	URL string

	proc   *os.Process
	exited chan struct{}
}

// StartHTTPD creates the principal HTTP/ServiceHost in k, writes its keytab
// and starts Apache in front of backend (an http:// URL) on a free loopback
// port. As root, Apache runs as www-data.
func StartHTTPD(k *KDC, backend string) (_ *HTTPD, err error) {
	dir, err := os.MkdirTemp("", "kojibot-httpd-")
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(dir)
		}
	}()
	for _, sub := range []string{"run", "rcache"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, err
		}
	}
	port, err := harness.FreePort()
	if err != nil {
		return nil, err
	}
	h := &HTTPD{Dir: dir, URL: "http://" + ServiceHost + ":" + strconv.Itoa(port)}
	spn := "HTTP/" + ServiceHost
	if err := k.AddPrincipal(spn, 0); err != nil {
		return nil, err
	}
	keytab := filepath.Join(dir, "http.keytab")
	if err := k.Keytab(keytab, spn); err != nil {
		return nil, err
	}
	var mods strings.Builder
	for _, m := range []string{"mpm_event", "authn_core", "authz_core", "authz_user", "auth_gssapi", "headers", "proxy", "proxy_http"} {
		fmt.Fprintf(&mods, "LoadModule %s_module %s/mod_%s.so\n", m, apacheModules, m)
	}
	// The <Location> block is FASJSON's (fedora-infra/fasjson's httpd
	// configuration): GSSAPI only, krb5 only, no Basic fallback, every
	// path behind "Require valid-user". FASJSON's session cookie and
	// credential delegation to LDAP are left out: the stand-in has no LDAP,
	// and kojibot sends a fresh Negotiate header on each request anyway.
	conf := fmt.Sprintf(`ServerRoot "%[1]s"
ServerName %[2]s
Listen 127.0.0.1:%[3]d
PidFile "%[1]s/run/httpd.pid"
DefaultRuntimeDir "%[1]s/run"
Mutex file:%[1]s/run default
ErrorLog "%[1]s/error.log"
LogLevel info auth_gssapi:debug
LogFormat "%%h %%u \"%%r\" %%>s" brief
CustomLog "%[1]s/access.log" brief
%[4]s
StartServers 1
ServerLimit 1
ThreadsPerChild 8
MaxRequestWorkers 8
MinSpareThreads 1
MaxSpareThreads 8

<Location "/">
    AuthType GSSAPI
    AuthName "Kerberos Login"
    GssapiCredStore keytab:%[1]s/http.keytab
    GssapiAllowedMech krb5
    GssapiBasicAuth Off
    Require valid-user
    RequestHeader set %[6]s "expr=%%{REMOTE_USER}"
</Location>

ProxyPass "/" "%[5]s/"
ProxyPassReverse "/" "%[5]s/"
`, dir, ServiceHost, port, mods.String(), strings.TrimSuffix(backend, "/"), RemoteUserHeader)
	confPath := filepath.Join(dir, "httpd.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	if err := harness.Chown(dir, "www-data"); err != nil {
		return nil, fmt.Errorf("kdc: httpd dir: %w", err)
	}
	if err := os.Chmod(keytab, 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command("/usr/sbin/apache2", "-f", confPath, "-D", "FOREGROUND")
	cmd.Env = append(os.Environ(), "KRB5_CONFIG="+k.Krb5Conf, "KRB5RCACHEDIR="+filepath.Join(dir, "rcache"))
	out, err := os.Create(filepath.Join(dir, "apache2.out"))
	if err != nil {
		return nil, err
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	if err := harness.AsUser(cmd, "www-data"); err != nil {
		return nil, err
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	cmd.SysProcAttr.Setpgid = true
	if err := harness.Spawn(cmd); err != nil {
		return nil, fmt.Errorf("kdc: apache2: %w", err)
	}
	h.proc = cmd.Process
	h.exited = make(chan struct{})
	go func() { _ = cmd.Wait(); close(h.exited) }()
	addr := "127.0.0.1:" + strconv.Itoa(port)
	up := harness.WaitFor(context.Background(), 15*time.Second, func() bool {
		select {
		case <-h.exited:
			return true
		default:
		}
		return harness.Listening(addr)
	})
	select {
	case <-h.exited:
		return nil, fmt.Errorf("kdc: apache2 exited: %s", h.logs())
	default:
	}
	if !up {
		h.Close()
		return nil, fmt.Errorf("kdc: apache2 does not listen on %s: %s", addr, h.logs())
	}
	return h, nil
}

// logs returns Apache's output and error log, for an error message.
func (h *HTTPD) logs() string {
	a, _ := os.ReadFile(filepath.Join(h.Dir, "apache2.out"))
	b, _ := os.ReadFile(filepath.Join(h.Dir, "error.log"))
	return strings.TrimSpace(string(a) + "\n" + string(b))
}

// ErrorLog returns Apache's error log.
func (h *HTTPD) ErrorLog() string {
	b, _ := os.ReadFile(filepath.Join(h.Dir, "error.log"))
	return string(b)
}

// Close stops Apache (its whole process group: the parent and its
// workers) and removes its directory.
func (h *HTTPD) Close() {
	if h.proc != nil {
		// Apache's graceful-stop signal is SIGWINCH; SIGTERM stops it now.
		_ = syscall.Kill(-h.proc.Pid, syscall.SIGTERM)
		select {
		case <-h.exited:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-h.proc.Pid, syscall.SIGKILL)
			<-h.exited
		}
		h.proc = nil
	}
	_ = os.RemoveAll(h.Dir)
}
