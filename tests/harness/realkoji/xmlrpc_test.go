package realkoji

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
)

func TestEncodeCall(t *testing.T) {
	b, err := encodeCall("editHost", []any{"ppc3", nil, int64(math.MaxInt32) + 1, 7, 2.5, true,
		[]int{0, 1}, Kwargs{"comment": nil, "capacity": 2.0}})
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, want := range []string{
		"<methodName>editHost</methodName>",
		"<value><string>ppc3</string></value>",
		"<value><nil/></value>",
		"<value><i8>2147483648</i8></value>",
		"<value><int>7</int></value>",
		"<value><double>2.5</double></value>",
		"<value><boolean>1</boolean></value>",
		"<array><data><value><int>0</int></value><value><int>1</int></value></data></array>",
		"<struct><member><name>__starstar</name><value><boolean>1</boolean></value></member>" +
			"<member><name>capacity</name><value><double>2</double></value></member>" +
			"<member><name>comment</name><value><nil/></value></member></struct>",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("encoded call lacks %s:\n%s", want, s)
		}
	}
	if _, err := encodeCall("x", []any{math.NaN()}); err == nil {
		t.Error("NaN was encoded")
	}
	if _, err := encodeCall("x", []any{struct{}{}}); err == nil {
		t.Error("a struct{} was encoded")
	}
	if b, _ := encodeCall("x", []any{"a<b&c"}); !strings.Contains(string(b), "a&lt;b&amp;c") {
		t.Errorf("string not escaped: %s", b)
	}
}

func TestDecodeResponse(t *testing.T) {
	v, err := decodeResponse(strings.NewReader(`<?xml version='1.0'?>
<methodResponse><params><param><value><array><data>
<value><struct>
<member><name>id</name><value><int>3</int></value></member>
<member><name>big</name><value><i8>4294967296</i8></value></member>
<member><name>capacity</name><value><double>2.0</double></value></member>
<member><name>comment</name><value><nil/></value></member>
<member><name>enabled</name><value><boolean>0</boolean></value></member>
<member><name>name</name><value><string>ppc3</string></value></member>
<member><name>untyped</name><value>plain</value></member>
<member><name>empty</name><value></value></member>
</struct></value>
<value><array><data></data></array></value>
</data></array></value></param></params></methodResponse>`))
	if err != nil {
		t.Fatal(err)
	}
	want := []any{map[string]any{"id": int64(3), "big": int64(4294967296), "capacity": 2.0, "comment": nil,
		"enabled": false, "name": "ppc3", "untyped": "plain", "empty": ""}, []any{}}
	if !reflect.DeepEqual(v, want) {
		t.Errorf("decoded %#v\nwant %#v", v, want)
	}
	_, err = decodeResponse(strings.NewReader(`<?xml version='1.0'?><methodResponse><fault><value><struct>
<member><name>faultCode</name><value><int>1002</int></value></member>
<member><name>faultString</name><value><string>Traceback (most recent call last):
  File "x"
koji.AuthError: not logged-in</string></value></member>
</struct></value></fault></methodResponse>`))
	var f *Fault
	if !errors.As(err, &f) || f.Code != 1002 || f.Error() != "koji fault 1002: koji.AuthError: not logged-in" {
		t.Errorf("fault: %v", err)
	}
	for _, bad := range []string{"", "<methodResponse>", "<methodResponse><params><param><value><int>x</int></value></param></params></methodResponse>",
		"<methodResponse><params><param><value><dateTime.iso8601>20260101T00:00:00</dateTime.iso8601></value></param></params></methodResponse>"} {
		if _, err := decodeResponse(strings.NewReader(bad)); err == nil {
			t.Errorf("decoded %q without error", bad)
		}
	}
}

// FuzzRoundTrip: what encodeValue writes, decodeValue reads back the same;
// arbitrary input never panics the decoder.
func FuzzRoundTrip(f *testing.F) {
	f.Add("ppc3", int64(4), 2.5, true)
	f.Add("<&>\"'", int64(math.MaxInt64), -0.0, false)
	f.Fuzz(func(t *testing.T, s string, n int64, x float64, b bool) {
		_, _ = decodeResponse(strings.NewReader(s))
		if math.IsNaN(x) || math.IsInf(x, 0) || !validXMLText(s) {
			return
		}
		in := []any{s, n, x, b, nil, map[string]any{s: []any{s, n}}}
		body, err := encodeCall("m", []any{in})
		if err != nil {
			t.Fatal(err)
		}
		resp := strings.Replace(strings.Replace(string(body), "<methodCall><methodName>m</methodName>", "<methodResponse>", 1),
			"</methodCall>", "</methodResponse>", 1)
		out, err := decodeResponse(strings.NewReader(resp))
		if err != nil {
			t.Fatalf("%v\n%s", err, resp)
		}
		want := []any{s, n, x, b, nil, map[string]any{s: []any{s, n}}}
		if !reflect.DeepEqual(out, want) {
			t.Errorf("round trip: %#v, want %#v", out, want)
		}
	})
}

// validXMLText reports whether s can be sent in XML 1.0 at all, with
// carriage returns (which XML normalises) left out.
func validXMLText(s string) bool {
	for _, r := range s {
		if r == '\r' || r == '\uFFFD' || (r < 0x20 && r != '\t' && r != '\n') || (r >= 0xD800 && r <= 0xDFFF) || r == 0xFFFE || r == 0xFFFF {
			return false
		}
	}
	return true
}
