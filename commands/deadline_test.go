package commands

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/fedora-infra/kojibot/config"
)

// TestCommandDeadline: a command that is not a job gets commands.timeout
// to answer; a hung database does not hold the worker beyond it.
func TestCommandDeadline(t *testing.T) {
	cfg := config.Default()
	cfg.Commands.Timeout = 200 * time.Millisecond
	db := &fakeDB{hosts: testHosts(time.Now()), hang: true}
	d := New(Deps{Config: cfg, DB: db, ACL: fakeACL{members: map[string]bool{"alice": true}}})
	defer d.Close()
	done := make(chan string, 1)
	go func() { done <- run(d, "alice", "hosts") }()
	select {
	case got := <-done:
		if !strings.HasPrefix(got, "error: ") || !strings.Contains(got, "did not finish within 200ms") {
			t.Errorf("reply %q, want an error naming the deadline", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("hosts on a hung database did not return within 10s (commands.timeout is 200ms)")
	}
}

// TestExecAuditNamesTheUnixUser: a command run by kojibot exec records the
// Unix user, the login uid and its user, and SUDO_USER labelled as claimed
// (anyone can set it), never as the sudo user.
func TestExecAuditNamesTheUnixUser(t *testing.T) {
	var buf bytes.Buffer
	d := New(Deps{DB: &fakeDB{hosts: testHosts(time.Now())}, ACL: fakeACL{members: map[string]bool{"alice": true}},
		Audit: slog.New(slog.NewJSONHandler(&buf, nil))})
	defer d.Close()
	d.Handle(context.Background(), Request{Transport: TransportExec, TrustedFASUser: "alice", LocalUser: "root", LoginUID: "1000", LoginUser: "kevin",
		SudoUser: "nirik", Place: "exec", Text: "hosts"}, &recorder{})
	for _, want := range []string{`"unix_user":"root"`, `"login_uid":"1000"`, `"login_user":"kevin"`,
		`"sudo_user_claimed":"nirik"`, `"as_fas_user":"alice"`} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("audit log lacks %s:\n%s", want, buf.String())
		}
	}
	if strings.Contains(buf.String(), `"sudo_user":`) {
		t.Errorf("audit log records SUDO_USER as the sudo user:\n%s", buf.String())
	}
}
