package kojiapi

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/fedora-infra/kojibot/commands/kojiapi/xmlrpc"
)

// TestFaultNames: a fault's Koji exception name, its place in Koji's
// exception tree, and which AuthErrors lose the session.
func TestFaultNames(t *testing.T) {
	doc := `<?xml version='1.0'?>
<methodResponse><fault><value><struct>
<member><name>faultCode</name><value><int>1004</int></value></member>
<member><name>faultString</name><value><string>koji.ActionNotAllowed: host permission required (logged in as kojibot)</string></value></member>
</struct></value></fault></methodResponse>`
	_, err := xmlrpc.DecodeResponse(strings.NewReader(doc))
	var f *Fault
	if !errors.As(err, &f) {
		t.Fatalf("got %v, want a fault", err)
	}
	if FaultName(err) != "ActionNotAllowed" || !IsFault(err, "ActionNotAllowed") || !IsFault(err, "GenericError") || IsFault(err, "AuthError") {
		t.Errorf("Name() = %q; IsFault ActionNotAllowed/GenericError/AuthError = %v/%v/%v", FaultName(err),
			IsFault(err, "ActionNotAllowed"), IsFault(err, "GenericError"), IsFault(err, "AuthError"))
	}
	if FaultCode(err) != FaultActionNotAllowed {
		t.Errorf("FaultCode = %d", FaultCode(err))
	}
	expired := &Fault{Code: FaultAuthExpired, String: `session "5" has expired`}
	if !IsFault(expired, "AuthError") || !sessionLost(expired) {
		t.Error("AuthExpired is not an AuthError that loses the session")
	}
	if !sessionLost(&Fault{Code: FaultAuth, String: "Invalid session or bad credentials"}) || sessionLost(&Fault{Code: FaultAuth, String: "Unknown user: alice"}) {
		t.Error("sessionLost misjudges AuthErrors")
	}
}

// TestEchoThroughTheHub sends values to the real hub's echo method, which
// answers its arguments: what we send is what the hub's Python reads, and
// what it sends back is what we read.
func TestEchoThroughTheHub(t *testing.T) {
	hub := upstreamHub(t)
	c, err := New(Options{URL: hub.URL, CAFile: hub.CACert(), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	// No "\r": the hub sends it back raw, and XML reads a raw CR LF as LF.
	args := []any{
		nil, true, int64(-5), int64(1) << 40, 2.5, "", "a <b> & 'c' \"d\"\n\ttab ünïcødé 𝄞",
		[]any{nil, "x", []any{}}, map[string]any{"comment": nil, "capacity": 4.0, "ids": []any{int64(1), int64(1) << 33}},
	}
	got, err := c.Call(context.Background(), "echo", args...)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, args) {
		t.Fatalf("echo answered\n%#v\nwant\n%#v", got, args)
	}
	// The hub's None for a keyword argument: getHost of a missing host,
	// strict=False given as a keyword argument, answers None.
	v, err := c.Call(context.Background(), "getHost", "no.such.host", Kwargs{"strict": false})
	if err != nil || v != nil {
		t.Fatalf("getHost(strict=False) = %#v, %v; want nil", v, err)
	}
	_, err = c.Call(context.Background(), "getHost", "no.such.host", Kwargs{"strict": true})
	if !IsFault(err, "GenericError") {
		t.Fatalf("getHost(strict=True) = %v; want a GenericError fault", err)
	}
}
