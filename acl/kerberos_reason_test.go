package acl

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// TestKerberosReasonAndService: another user of the Kerberos code (the
// Koji hub client) reads the short reason of a failure, and the log
// names its service rather than FASJSON.
func TestKerberosReasonAndService(t *testing.T) {
	var logs bytes.Buffer
	k, err := NewKerberos(KerberosOptions{Keytab: filepath.Join(t.TempDir(), "missing.keytab"),
		Krb5Conf: filepath.Join(t.TempDir(), "missing.conf"), Service: "the Koji hub",
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, "https://koji.example.org/kojihub/ssllogin", nil)
	err = k.Authenticate(req)
	reason, ok := KerberosReason(err)
	if !ok || reason != "the krb5 configuration does not exist" {
		t.Fatalf("KerberosReason(%v) = %q, %v", err, reason, ok)
	}
	if !strings.Contains(logs.String(), "cannot authenticate to the Koji hub") || strings.Contains(logs.String(), "FASJSON") {
		t.Fatalf("the log does not name the service: %s", logs.String())
	}
	if _, ok := KerberosReason(errors.New("other")); ok {
		t.Fatal("KerberosReason took another error for a Kerberos failure")
	}
}
