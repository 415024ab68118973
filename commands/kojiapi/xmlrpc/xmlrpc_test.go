package xmlrpc

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// hostPPC3 is the host the captured answers describe.
var hostPPC3 = map[string]any{
	"arches": "ppc ppc64", "capacity": 4.0, "comment": nil, "description": "POWER7 <rack> & 12",
	"enabled": true, "id": int64(1), "name": "ppc3.fedora.redhat.com", "ready": false,
	"task_load": 0.0, "update_ts": nil, "user_id": int64(3),
}

// TestDecodeCapturedAnswers decodes answers captured from Koji 1.35.3's
// hub (testdata/wire), byte for byte as it sent them.
func TestDecodeCapturedAnswers(t *testing.T) {
	tests := []struct {
		file      string
		want      any
		wantFault *Fault
	}{
		{"getAPIVersion", int64(1), nil},
		{"getHost", hostPPC3, nil},
		{"getHost-missing", nil, nil},
		{"listHosts", []any{hostPPC3}, nil},
		{"listBuildroots", []any{}, nil},
		{"getLoggedInUser", map[string]any{
			"id": int64(2), "name": "kojibot", "status": int64(0), "usertype": int64(0),
			"krb_principals": []any{"kojibot@KOJIBOT.TEST"}, "authtype": int64(2),
			"krb_principal": "kojibot@KOJIBOT.TEST",
		}, nil},
		{"editHost-denied", nil, &Fault{Code: 1004 /* ActionNotAllowed */, String: "host permission required (logged in as kojibot)"}},
		{"invalid-session", nil, &Fault{Code: 1002 /* AuthError */, String: "Invalid session or bad credentials"}},
		{"nosuchmethod", nil, &Fault{Code: 1000 /* GenericError */, String: "Invalid method: noSuchMethod"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", "wire", tt.file+".xml"))
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecodeResponse(bytes.NewReader(data))
			if tt.wantFault != nil {
				var f *Fault
				if !errors.As(err, &f) || *f != *tt.wantFault {
					t.Fatalf("got %v, %v; want the fault %+v", got, err, tt.wantFault)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got  %#v\nwant %#v", got, tt.want)
			}
		})
	}
}

// resp wraps a <value> in a methodResponse.
func resp(value string) string {
	return "<?xml version='1.0'?>\n<methodResponse><params><param>" + value + "</param></params></methodResponse>"
}

// TestDecodeValues: the forms of each type the wire format allows.
func TestDecodeValues(t *testing.T) {
	tests := []struct {
		name, doc string
		want      any
	}{
		{"int", resp("<value><int>-7</int></value>"), int64(-7)},
		{"i4", resp("<value><i4>2147483647</i4></value>"), int64(math.MaxInt32)},
		{"i8 beyond int32", resp("<value><i8>1733307018914579</i8></value>"), int64(1733307018914579)},
		{"i8 min", resp("<value><i8>-9223372036854775808</i8></value>"), int64(math.MinInt64)},
		{"double update_ts", resp("<value><double>1764843018.914579</double></value>"), 1764843018.914579},
		{"double exponent", resp("<value><double>1e-05</double></value>"), 1e-05},
		{"boolean", resp("<value><boolean>0</boolean></value>"), false},
		{"nil", resp("<value><nil/></value>"), nil},
		{"nil long form", resp("<value><nil></nil></value>"), nil},
		{"string", resp("<value><string>a &lt;b&gt; &amp; c\n</string></value>"), "a <b> & c\n"},
		{"empty string", resp("<value><string/></value>"), ""},
		{"untyped string", resp("<value>plain</value>"), "plain"},
		{"untyped empty", resp("<value/>"), ""},
		{"time as string", resp("<value><string>2026-12-04 10:10:18.914579+00:00</string></value>"), "2026-12-04 10:10:18.914579+00:00"},
		{"no declaration", "<methodResponse><params><param><value><int>1</int></value></param></params></methodResponse>", int64(1)},
		{"white space", resp("\n<value>\n <array>\n <data>\n <value><int>1</int></value>\n </data>\n </array>\n</value>\n") + "\n", []any{int64(1)}},
		{"nested", resp("<value><struct><member><name>a</name><value><array><data><value><struct></struct></value></data></array></value></member></struct></value>"),
			map[string]any{"a": []any{map[string]any{}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeResponse(strings.NewReader(tt.doc))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

// TestDecodeFault: the fault's code, and its message the last line of a
// faultString carrying a traceback.
func TestDecodeFault(t *testing.T) {
	doc := `<?xml version='1.0'?>
<methodResponse><fault><value><struct>
<member><name>faultCode</name><value><int>1004</int></value></member>
<member><name>faultString</name><value><string>Traceback (most recent call last):
  File "/usr/lib/python3/kojihub/kojixmlrpc.py", line 269, in _dispatch
    ret = koji.util.call_with_argcheck(func, params, opts)
koji.ActionNotAllowed: host permission required (logged in as kojibot)
</string></value></member>
</struct></value></fault></methodResponse>`
	_, err := DecodeResponse(strings.NewReader(doc))
	var f *Fault
	if !errors.As(err, &f) {
		t.Fatalf("got %v, want a fault", err)
	}
	if want := "koji.ActionNotAllowed: host permission required (logged in as kojibot)"; f.Error() != want {
		t.Errorf("Error() = %q, want %q", f.Error(), want)
	}
}

// TestDecodeRejects: a malformed document, or a type Koji does not use,
// is an error, never a guess.
func TestDecodeRejects(t *testing.T) {
	tests := []struct{ name, doc, want string }{
		{"dateTime", resp("<value><dateTime.iso8601>20261204T10:10:18</dateTime.iso8601></value>"), "dateTime.iso8601> is not supported"},
		{"base64", resp("<value><base64>AA==</base64></value>"), "base64> is not supported"},
		{"unknown type", resp("<value><float>1</float></value>"), "unknown type"},
		{"empty", "", "not an XML document"},
		{"not XML", "HTTP/1.1 502 Bad Gateway", "where <methodResponse> was expected"},
		{"wrong root", "<methodCall/>", "where <methodResponse> was expected"},
		{"cut short", resp("<value><int>1</int></value>")[:60], "unexpected EOF"},
		{"cut after the root", resp("<value><int>1</int></value>")[:100], "unexpected EOF"},
		{"trailing content", resp("<value><int>1</int></value>") + "<x/>", "content after"},
		{"trailing text", resp("<value><int>1</int></value>") + "junk", "content after"},
		{"two params", "<methodResponse><params><param><value>a</value></param><param><value>b</value></param></params></methodResponse>", "</params> was expected"},
		{"no param", "<methodResponse><params></params></methodResponse>", "<param> was expected"},
		{"text and element", resp("<value>x<int>1</int></value>"), "text and <int>"},
		{"two types", resp("<value><int>1</int><int>2</int></value>"), "</value> was expected"},
		{"element in a scalar", resp("<value><string><b>x</b></string></value>"), "inside a scalar"},
		{"nil with content", resp("<value><nil>x</nil></value>"), "<nil> with content"},
		{"int not a number", resp("<value><int>1x</int></value>"), "not an integer"},
		{"int empty", resp("<value><int></int></value>"), "not an integer"},
		{"i4 out of range", resp("<value><i4>2147483648</i4></value>"), "out of range"},
		{"i8 out of range", resp("<value><i8>9223372036854775808</i8></value>"), "out of range"},
		{"double inf", resp("<value><double>inf</double></value>"), "not a number"},
		{"double nan", resp("<value><double>nan</double></value>"), "not a number"},
		{"double hex", resp("<value><double>0x1p-2</double></value>"), "not a number"},
		{"double overflow", resp("<value><double>1e999</double></value>"), "out of range"},
		{"boolean 2", resp("<value><boolean>2</boolean></value>"), "neither 0 nor 1"},
		{"boolean true", resp("<value><boolean>true</boolean></value>"), "neither 0 nor 1"},
		{"duplicate member", resp("<value><struct><member><name>a</name><value>1</value></member><member><name>a</name><value>2</value></member></struct></value>"), "twice"},
		{"member without value", resp("<value><struct><member><name>a</name></member></struct></value>"), "<value> was expected"},
		{"member value first", resp("<value><struct><member><value>1</value><name>a</name></member></struct></value>"), "<name> was expected"},
		{"array without data", resp("<value><array><value>1</value></array></value>"), "<data> was expected"},
		{"junk in array", resp("<value><array><data><int>1</int></data></array></value>"), "<int> in an array"},
		{"text in struct", resp("<value><struct>x</struct></value>"), "out of place"},
		{"comment", resp("<value><!-- x --><int>1</int></value>"), "comment"},
		{"doctype", "<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a 'b'>]>" + resp("<value>&a;</value>")[22:], "directive"},
		{"unknown entity", resp("<value>&a;</value>"), "entity"},
		{"namespace", resp(`<value><x:int xmlns:x="urn:x">1</x:int></value>`), "namespaced"},
		{"processing instruction", resp("<value><?php x?><int>1</int></value>"), "processing instruction"},
		{"mismatched end", "<methodResponse><params><param><value><int>1</i4></value></param></params></methodResponse>", "xmlrpc"},
		{"fault not a struct", "<methodResponse><fault><value><int>1</int></value></fault></methodResponse>", "faultCode and faultString"},
		{"fault without string", "<methodResponse><fault><value><struct><member><name>faultCode</name><value><int>1</int></value></member></struct></value></fault></methodResponse>", "faultCode and faultString"},
		{"fault with extra member", "<methodResponse><fault><value><struct><member><name>faultCode</name><value><int>1</int></value></member><member><name>faultString</name><value>x</value></member><member><name>x</name><value>x</value></member></struct></value></fault></methodResponse>", "faultCode and faultString"},
		{"too deep", resp(strings.Repeat("<value><array><data>", maxDepth+1) + strings.Repeat("</data></array></value>", maxDepth+1)), "nested more than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := DecodeResponse(strings.NewReader(tt.doc))
			if err == nil {
				t.Fatalf("accepted, giving %#v", v)
			}
			var f *Fault
			if errors.As(err, &f) {
				t.Fatalf("decoded as a fault: %v", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not say %q", err, tt.want)
			}
		})
	}
}

// TestEncodeCall: the bytes of a call with keyword arguments as Koji's
// client sends them: None as <nil/> (never an untyped empty value),
// integers beyond int32 as <i8>, the keyword arguments a trailing struct
// with __starstar.
func TestEncodeCall(t *testing.T) {
	got, err := EncodeCall("editHost", []any{"ppc3.fedora.redhat.com", Kwargs{
		"comment": nil, "capacity": 2.5, "enabled": true, "ids": []int64{1, 4294967296}, "arches": []string{"ppc", "a<b"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	want := `<?xml version="1.0"?>
<methodCall><methodName>editHost</methodName><params>` +
		`<param><value><string>ppc3.fedora.redhat.com</string></value></param>` +
		`<param><value><struct>` +
		`<member><name>__starstar</name><value><boolean>1</boolean></value></member>` +
		`<member><name>arches</name><value><array><data><value><string>ppc</string></value><value><string>a&lt;b</string></value></data></array></value></member>` +
		`<member><name>capacity</name><value><double>2.5</double></value></member>` +
		`<member><name>comment</name><value><nil/></value></member>` +
		`<member><name>enabled</name><value><boolean>1</boolean></value></member>` +
		`<member><name>ids</name><value><array><data><value><int>1</int></value><value><i8>4294967296</i8></value></data></array></value></member>` +
		`</struct></value></param></params></methodCall>
`
	if string(got) != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	none, err := EncodeCall("getLoggedInUser", nil)
	if err != nil || string(none) != "<?xml version=\"1.0\"?>\n<methodCall><methodName>getLoggedInUser</methodName><params></params></methodCall>\n" {
		t.Fatalf("got %q, %v", none, err)
	}
}

// TestEncodeRejects: what cannot be sent faithfully is an error.
func TestEncodeRejects(t *testing.T) {
	tests := []struct {
		name   string
		method string
		args   []any
	}{
		{"kwargs not last", "m", []any{Kwargs{"a": 1}, "x"}},
		{"kwargs nested", "m", []any{[]any{Kwargs{"a": 1}}}},
		{"kwargs __starstar", "m", []any{Kwargs{"__starstar": true}}},
		{"NaN", "m", []any{math.NaN()}},
		{"Inf", "m", []any{math.Inf(1)}},
		{"unsupported type", "m", []any{struct{}{}}},
		{"uint", "m", []any{uint(1)}},
		{"control character", "m", []any{"a\x00b"}},
		{"invalid UTF-8", "m", []any{"a\xffb"}},
		{"bad member name", "m", []any{map[string]any{"a\x01": 1}}},
		{"empty method", "", nil},
		{"too deep", "m", []any{deep(maxDepth + 2)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if b, err := EncodeCall(tt.method, tt.args); err == nil {
				t.Fatalf("encoded as %s", b)
			}
		})
	}
}

func deep(n int) any {
	var v any = "x"
	for range n {
		v = []any{v}
	}
	return v
}

// roundTripValues are values the codec must carry unchanged both ways.
var roundTripValues = []any{
	nil, true, false, int64(0), int64(math.MaxInt32), int64(math.MinInt32), int64(math.MaxInt32) + 1,
	int64(math.MinInt64), int64(math.MaxInt64), 0.0, -1.5, 1764843018.914579, 1e300, 5e-324,
	"", "plain", "a <b> & 'c' \"d\"\r\n\ttab", "ünïcødé ✓ 𝄞", "]]>",
	[]any{}, []any{nil, int64(1), "x", []any{map[string]any{}}},
	map[string]any{}, map[string]any{"": "empty name", "comment": nil, "a b": []any{true}},
	hostPPC3, deep(maxDepth - 1),
}

// TestRoundTrip: a value encoded as the hub would send it decodes to
// itself.
func TestRoundTrip(t *testing.T) {
	for _, v := range roundTripValues {
		doc, err := EncodeResponse(v)
		if err != nil {
			t.Fatalf("%#v: %v", v, err)
		}
		got, err := DecodeResponse(bytes.NewReader(doc))
		if err != nil {
			t.Fatalf("%#v: %v\n%s", v, err, doc)
		}
		if !reflect.DeepEqual(got, v) {
			t.Fatalf("got %#v, want %#v", got, v)
		}
	}
}

// FuzzDecode: no input makes the decoder panic, and whatever it accepts
// is a well-formed XML document whose value survives a round trip.
func FuzzDecode(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "wire", "*.xml"))
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, v := range roundTripValues[:len(roundTripValues)-1] {
		b, err := EncodeResponse(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(resp("<value><dateTime.iso8601>20261204T10:10:18</dateTime.iso8601></value>")))
	f.Add([]byte("<methodResponse><fault><value><struct><member><name>faultCode</name><value><int>1</int></value></member><member><name>faultString</name><value>x</value></member></struct></value></fault></methodResponse>"))
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := DecodeResponse(bytes.NewReader(data))
		if err != nil {
			var fault *Fault
			if !errors.As(err, &fault) {
				return
			}
			// A fault is accepted too: re-encode it as a struct below.
			v = map[string]any{"faultCode": int64(fault.Code), "faultString": fault.String}
		}
		// Accepted: the input is well-formed XML to its end.
		d := xml.NewDecoder(bytes.NewReader(data))
		for {
			_, terr := d.Token()
			if terr == io.EOF {
				break
			}
			if terr != nil {
				t.Fatalf("accepted a document that is not well-formed (%v): %q", terr, data)
			}
		}
		doc, err := EncodeResponse(v)
		if err != nil {
			t.Fatalf("accepted %q as %#v, which cannot be encoded: %v", data, v, err)
		}
		back, err := DecodeResponse(bytes.NewReader(doc))
		if err != nil || !reflect.DeepEqual(back, v) {
			t.Fatalf("accepted %q as %#v; its re-encoding decodes as %#v, %v", data, v, back, err)
		}
	})
}
