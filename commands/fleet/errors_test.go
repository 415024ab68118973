package fleet

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// TestSummary: every kind of Fleet failure is named by the host's
// configured name and a few words, never with its address, a path, a key
// fingerprint or an ssh-keyscan hint.
func TestSummary(t *testing.T) {
	const label = "xenbuilder4 (127.0.0.9:2222)"
	for _, tt := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("fleet: %s: %w: it presents ssh-ed25519 SHA256:abc, which is not in /etc/kojibot/known_hosts; add it with `ssh-keyscan -p 2222 127.0.0.9 >> /etc/kojibot/known_hosts` after checking its fingerprint", label, ErrUnknownHostKey),
			"xenbuilder4: unknown SSH host key (see the log)"},
		{fmt.Errorf("fleet: %s: %w: it now presents ssh-ed25519 SHA256:x but known_hosts has ssh-rsa SHA256:y (/etc/kojibot/known_hosts:3); fix it (ssh-keygen -R [127.0.0.9]:2222 -f /etc/kojibot/known_hosts)", label, ErrHostKeyChanged),
			"xenbuilder4: SSH host key changed (see the log)"},
		{fmt.Errorf("fleet: %s: %w for user kojibot: ssh: unable to authenticate", label, ErrAuth), "xenbuilder4: SSH login refused"},
		{fmt.Errorf("fleet: %s: %w: connect: dial tcp 127.0.0.9:2222: connect: connection refused", label, ErrUnreachable), "xenbuilder4: unreachable"},
		{fmt.Errorf("fleet: %s: %w: connect: no answer within 5s (%w)", label, ErrUnreachable, ErrTimeout), "xenbuilder4: timed out"},
		{ctxErr(t), "xenbuilder2: timed out"},
		{fmt.Errorf("stopping kojid: %w", fmt.Errorf("fleet: %s: %w", "koji-hub", ErrUnreachable)), "koji-hub: unreachable"},
		{fmt.Errorf("fleet: %w: service name %q (letters, digits and @._- only)", ErrInvalid, "-x"), "invalid argument"},
		{fmt.Errorf("fleet: nosuch: %w", ErrUnknownHost), "nosuch: not a configured host"},
	} {
		got, ok := Summary(tt.err)
		if !ok || got != tt.want {
			t.Errorf("Summary(%q) = %q, %v; want %q", tt.err, got, ok, tt.want)
		}
		for _, leak := range []string{"127.0.0.9", "2222", "/etc", "ssh-keyscan", "ssh-keygen", "SHA256"} {
			if strings.Contains(got, leak) {
				t.Errorf("Summary(%q) = %q carries %q", tt.err, got, leak)
			}
		}
		if kind, ok := Kind(tt.err); !ok || !strings.HasSuffix(tt.want, kind) {
			t.Errorf("Kind(%q) = %q, %v; want the end of %q", tt.err, kind, ok, tt.want)
		}
	}
	for _, err := range []error{nil, errors.New("fleet: xenbuilder4 (127.0.0.9:22): something else"), context.Canceled} {
		if got, ok := Summary(err); ok {
			t.Errorf("Summary(%v) = %q, want none", err, got)
		}
	}
}

// ctxErr is the error a command's deadline gives.
func ctxErr(t *testing.T) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 0)
	defer cancel()
	<-ctx.Done()
	return ctxError(ctx, "xenbuilder2 (127.0.0.9:2222)", "df", 0)
}

func TestJoinErrors(t *testing.T) {
	if err := JoinErrors(map[string]error{"a": nil}); err != nil {
		t.Errorf("JoinErrors(no failures) = %v", err)
	}
	err := JoinErrors(map[string]error{"b": errors.New("b broke"), "a": errors.New("a broke"), "c": nil})
	if err == nil || err.Error() != "a broke\nb broke" {
		t.Errorf("JoinErrors = %q", err)
	}
}
