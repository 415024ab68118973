// Package kdc starts the Kerberos side of kojibot's tests: an MIT KDC with
// a throwaway realm, and Apache httpd with mod_auth_gssapi in front of an
// HTTP backend (the FASJSON stand-in), set up the way FASJSON is deployed.
// Both run from temporary directories on loopback and are stopped by PID;
// nothing here needs a *testing.T.
package kdc

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fedora-infra/kojibot/tests/harness"
)

// Realm is the realm of every KDC the harness starts.
const Realm = "KOJIBOT.TEST"

// ClockSkew is the clock skew, in seconds, that the harness's krb5.conf
// allows. MIT accepts a ticket until its end time plus the skew; a small
// skew makes an expired ticket fail within seconds, as a test needs.
const ClockSkew = 5

// KDC is a running MIT krb5kdc for Realm.
type KDC struct {
	// Dir holds the database, the configuration and the logs.
	Dir string
	// Krb5Conf is a krb5.conf whose realm entry points at this KDC.
	Krb5Conf string
	// Addr is host:port, on UDP and TCP.
	Addr string

	env    []string
	mu     sync.Mutex
	proc   *os.Process
	exited chan struct{} // closed when proc has exited
}

// StartKDC creates a realm in a new temporary directory and starts
// krb5kdc on a free loopback port.
func StartKDC() (_ *KDC, err error) {
	dir, err := os.MkdirTemp("", "kojibot-kdc-")
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(dir)
		}
	}()
	// Apache, running as another user, reads krb5.conf from here; the
	// database and the stash that kdb5_util writes are 0600.
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	port, err := harness.FreePort()
	if err != nil {
		return nil, err
	}
	k := &KDC{Dir: dir, Krb5Conf: filepath.Join(dir, "krb5.conf"), Addr: "127.0.0.1:" + strconv.Itoa(port)}
	kdcConf := filepath.Join(dir, "kdc.conf")
	k.env = append(os.Environ(), "KRB5_CONFIG="+k.Krb5Conf, "KRB5_KDC_PROFILE="+kdcConf,
		"KRB5CCNAME=FILE:"+filepath.Join(dir, "ccache"), "KRB5RCACHEDIR="+dir)
	files := map[string]string{
		k.Krb5Conf: fmt.Sprintf(`[libdefaults]
 default_realm = %[1]s
 dns_lookup_kdc = false
 dns_lookup_realm = false
 rdns = false
 dns_canonicalize_hostname = false
 clockskew = %[3]d
 default_tkt_enctypes = aes256-cts-hmac-sha1-96 aes128-cts-hmac-sha1-96
 default_tgs_enctypes = aes256-cts-hmac-sha1-96 aes128-cts-hmac-sha1-96
 permitted_enctypes = aes256-cts-hmac-sha1-96 aes128-cts-hmac-sha1-96

[realms]
 %[1]s = {
  kdc = %[2]s
 }

[domain_realm]
 localhost = %[1]s
`, Realm, k.Addr, ClockSkew),
		kdcConf: fmt.Sprintf(`[kdcdefaults]
 kdc_listen = %[2]s
 kdc_tcp_listen = %[2]s

[realms]
 %[1]s = {
  database_name = %[3]s/principal
  key_stash_file = %[3]s/stash
  acl_file = %[3]s/kadm5.acl
  max_life = 1h
  max_renewable_life = 0
  supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal
 }

[logging]
 kdc = FILE:%[3]s/kdc.log
`, Realm, k.Addr, dir),
		filepath.Join(dir, "kadm5.acl"): "",
	}
	for path, text := range files {
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			return nil, err
		}
	}
	// The master password protects nothing: the realm lives for one test.
	if err := k.run("kdb5_util", "create", "-s", "-W", "-r", Realm, "-P", "kojibot-test-master"); err != nil {
		return nil, err
	}
	if err := k.Start(); err != nil {
		return nil, err
	}
	return k, nil
}

// run runs a Kerberos admin program with this realm's environment.
func (k *KDC) run(name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Env = k.env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("kdc: %s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}

// kadmin runs one kadmin.local query.
func (k *KDC) kadmin(query string) error {
	return k.run("kadmin.local", "-r", Realm, "-q", query)
}

// AddPrincipal creates name (without realm) with a random key. A maxLife
// above zero caps the lifetime of its tickets.
func (k *KDC) AddPrincipal(name string, maxLife time.Duration) error {
	q := "addprinc -randkey"
	if maxLife > 0 {
		q += fmt.Sprintf(` -maxlife "%d seconds"`, int(maxLife.Seconds()))
	}
	return k.kadmin(q + " " + name)
}

// Keytab gives name (without realm) a new random key and writes it to a
// keytab at path. A keytab written earlier for name then holds an outdated
// key: that is how a test makes a wrong keytab.
func (k *KDC) Keytab(path, name string) error {
	return k.kadmin("ktadd -k " + path + " " + name)
}

// Start starts krb5kdc (again, after Stop) and waits until it listens.
func (k *KDC) Start() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.proc != nil {
		return nil
	}
	cmd := exec.Command("krb5kdc", "-n", "-r", Realm, "-P", filepath.Join(k.Dir, "kdc.pid"))
	cmd.Env = k.env
	log, err := os.OpenFile(filepath.Join(k.Dir, "krb5kdc.out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer log.Close()
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := harness.Spawn(cmd); err != nil {
		return fmt.Errorf("kdc: krb5kdc: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	up := harness.WaitFor(context.Background(), 10*time.Second, func() bool {
		select {
		case <-exited:
			return true
		default:
		}
		return harness.Listening(k.Addr)
	})
	select {
	case <-exited:
		out, _ := os.ReadFile(filepath.Join(k.Dir, "krb5kdc.out"))
		return fmt.Errorf("kdc: krb5kdc exited: %s", strings.TrimSpace(string(out)))
	default:
	}
	if !up {
		_ = cmd.Process.Kill()
		return fmt.Errorf("kdc: krb5kdc does not listen on %s", k.Addr)
	}
	k.proc = cmd.Process
	k.exited = exited
	return nil
}

// Stop stops krb5kdc; the realm stays, so Start can start it again.
func (k *KDC) Stop() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.proc == nil {
		return
	}
	_ = k.proc.Signal(syscall.SIGTERM)
	select {
	case <-k.exited:
	case <-time.After(5 * time.Second):
		_ = k.proc.Kill()
		<-k.exited
	}
	k.proc = nil
}

// Close stops krb5kdc and removes the realm.
func (k *KDC) Close() {
	k.Stop()
	_ = os.RemoveAll(k.Dir)
}
