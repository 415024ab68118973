// Package xmlrpc is the XML-RPC codec kojibot speaks to the Koji hub
// with: a methodCall out, a methodResponse or a fault in.
//
// It is our own, on purpose. The one Go module for XML-RPC is untagged
// (no release to pin or audit) and mishandles nil: it sends a nil as an
// untyped empty <value/>, which the hub reads as "" (so
// editHost(comment=None) would set an empty comment), and leaves a reused
// target unchanged on <nil/>. Koji needs little of XML-RPC: <nil/> both
// ways, <int>/<i4>/<i8> in and <i8> out beyond int32, <double>,
// <boolean>, <string>, arrays, structs, keyword arguments as a trailing
// struct with __starstar, and faults. That is a few hundred lines,
// strict (a malformed document is an error, never a guess) and fuzzed.
// <dateTime.iso8601> and <base64> are refused both ways: Koji sends times
// as strings or doubles.
package xmlrpc

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/fedora-infra/kojibot/bot/reply"
)

// Kwargs are the keyword arguments of a call (editHost's capacity=...,
// sslLogin's proxyuser=...). Given as the last argument of Call, they are
// sent as a trailing struct with the member __starstar set to true, the
// way Koji's own client sends them.
type Kwargs map[string]any

// maxDepth bounds the nesting of arrays and structs in an answer.
const maxDepth = 64

// errCodec is wrapped by every encoding and decoding error.
var errCodec = errors.New("xmlrpc")

func codecErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errCodec, fmt.Sprintf(format, args...))
}

// EncodeCall returns the methodCall document of method with params. A
// Kwargs is allowed only as the last parameter.
func EncodeCall(method string, params []any) ([]byte, error) {
	if method == "" || !validText(method) {
		return nil, codecErr("invalid method name %q", method)
	}
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0"?>` + "\n<methodCall><methodName>")
	_ = xml.EscapeText(&b, []byte(method))
	b.WriteString("</methodName><params>")
	for i, p := range params {
		if _, ok := p.(Kwargs); ok && i != len(params)-1 {
			return nil, codecErr("keyword arguments must be the last argument")
		}
		b.WriteString("<param>")
		if err := encodeValue(&b, p, 0, true); err != nil {
			return nil, err
		}
		b.WriteString("</param>")
	}
	b.WriteString("</params></methodCall>\n")
	return b.Bytes(), nil
}

// encodeValue writes v as a <value>. top says v is a call's parameter,
// the only place a Kwargs may be.
func encodeValue(b *bytes.Buffer, v any, depth int, top bool) error {
	if depth > maxDepth {
		return codecErr("value nested more than %d deep", maxDepth)
	}
	b.WriteString("<value>")
	switch x := v.(type) {
	case nil:
		b.WriteString("<nil/>")
	case bool:
		if x {
			b.WriteString("<boolean>1</boolean>")
		} else {
			b.WriteString("<boolean>0</boolean>")
		}
	case int:
		encodeInt(b, int64(x))
	case int32:
		encodeInt(b, int64(x))
	case int64:
		encodeInt(b, x)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return codecErr("cannot send the double %v", x)
		}
		b.WriteString("<double>" + strconv.FormatFloat(x, 'g', -1, 64) + "</double>")
	case string:
		if !validText(x) {
			return codecErr("a string holds a character XML cannot carry")
		}
		b.WriteString("<string>")
		_ = xml.EscapeText(b, []byte(x))
		b.WriteString("</string>")
	case []any:
		if err := encodeArray(b, len(x), func(i int) any { return x[i] }, depth); err != nil {
			return err
		}
	case []string:
		if err := encodeArray(b, len(x), func(i int) any { return x[i] }, depth); err != nil {
			return err
		}
	case []int:
		if err := encodeArray(b, len(x), func(i int) any { return x[i] }, depth); err != nil {
			return err
		}
	case []int64:
		if err := encodeArray(b, len(x), func(i int) any { return x[i] }, depth); err != nil {
			return err
		}
	case map[string]any:
		if err := encodeStruct(b, x, false, depth); err != nil {
			return err
		}
	case Kwargs:
		if !top {
			return codecErr("keyword arguments inside a value")
		}
		if _, ok := x["__starstar"]; ok {
			return codecErr("__starstar is not a keyword argument")
		}
		if err := encodeStruct(b, x, true, depth); err != nil {
			return err
		}
	default:
		return codecErr("cannot send a %T", v)
	}
	b.WriteString("</value>")
	return nil
}

func encodeInt(b *bytes.Buffer, n int64) {
	if n >= math.MinInt32 && n <= math.MaxInt32 {
		b.WriteString("<int>" + strconv.FormatInt(n, 10) + "</int>")
	} else {
		b.WriteString("<i8>" + strconv.FormatInt(n, 10) + "</i8>")
	}
}

func encodeArray(b *bytes.Buffer, n int, at func(int) any, depth int) error {
	b.WriteString("<array><data>")
	for i := range n {
		if err := encodeValue(b, at(i), depth+1, false); err != nil {
			return err
		}
	}
	b.WriteString("</data></array>")
	return nil
}

func encodeStruct(b *bytes.Buffer, m map[string]any, starstar bool, depth int) error {
	keys := make([]string, 0, len(m))
	for k := range m {
		if !validText(k) {
			return codecErr("a member name holds a character XML cannot carry")
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b.WriteString("<struct>")
	if starstar {
		b.WriteString("<member><name>__starstar</name><value><boolean>1</boolean></value></member>")
	}
	for _, k := range keys {
		b.WriteString("<member><name>")
		_ = xml.EscapeText(b, []byte(k))
		b.WriteString("</name>")
		if err := encodeValue(b, m[k], depth+1, false); err != nil {
			return err
		}
		b.WriteString("</member>")
	}
	b.WriteString("</struct>")
	return nil
}

// validText reports whether s is UTF-8 made only of characters XML 1.0
// can carry.
func validText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		switch {
		case r == '\t' || r == '\n' || r == '\r':
		case r < 0x20, r >= 0xD800 && r <= 0xDFFF, r == 0xFFFE, r == 0xFFFF:
			return false
		}
	}
	return true
}

// parser reads an XML-RPC document strictly: the elements XML-RPC
// defines, in their places, with nothing but white space between them;
// no comment, directive, namespace or trailing content.
type parser struct {
	d     *xml.Decoder
	depth int
}

func newParser(r io.Reader) *parser {
	d := xml.NewDecoder(r)
	d.Strict = true
	return &parser{d: d}
}

// raw returns the next token, a premature end of input being an error.
func (p *parser) raw() (xml.Token, error) {
	t, err := p.d.Token()
	if err == io.EOF {
		return nil, codecErr("the document ends early")
	}
	if err != nil {
		return nil, codecErr("%v", err)
	}
	switch x := t.(type) {
	case xml.StartElement:
		if x.Name.Space != "" {
			return nil, codecErr("namespaced element <%s:%s>", x.Name.Space, x.Name.Local)
		}
		return x.Copy(), nil
	case xml.EndElement:
		return x, nil
	case xml.CharData:
		return x.Copy(), nil
	case xml.Comment:
		return nil, codecErr("a comment in the document")
	case xml.Directive:
		return nil, codecErr("a directive in the document")
	case xml.ProcInst:
		return nil, codecErr("a processing instruction inside the document")
	}
	return nil, codecErr("unexpected token %T", t)
}

// next returns the next element start or end, skipping white space.
func (p *parser) next() (xml.Token, error) {
	for {
		t, err := p.raw()
		if err != nil {
			return nil, err
		}
		if cd, ok := t.(xml.CharData); ok {
			if len(bytes.TrimSpace(cd)) != 0 {
				return nil, codecErr("text %q out of place", shorten(string(cd)))
			}
			continue
		}
		return t, nil
	}
}

// open reads the start of element name.
func (p *parser) open(name string) error {
	t, err := p.next()
	if err != nil {
		return err
	}
	if se, ok := t.(xml.StartElement); !ok || se.Name.Local != name {
		return codecErr("found %s where <%s> was expected", describe(t), name)
	}
	return nil
}

// close reads the end of the element open (the decoder checks it is the
// one that was opened).
func (p *parser) close(name string) error {
	t, err := p.next()
	if err != nil {
		return err
	}
	if _, ok := t.(xml.EndElement); !ok {
		return codecErr("found %s where </%s> was expected", describe(t), name)
	}
	return nil
}

// prolog reads the optional XML declaration and the root element's start.
func (p *parser) prolog(root string) error {
	t, err := p.d.Token()
	if err != nil {
		return codecErr("not an XML document: %v", err)
	}
	if pi, ok := t.(xml.ProcInst); !ok || pi.Target != "xml" {
		// No declaration: t is the first token proper.
		if cd, ok := t.(xml.CharData); ok && len(bytes.TrimSpace(cd)) == 0 {
			return p.open(root)
		}
		if se, ok := t.(xml.StartElement); ok && se.Name.Local == root && se.Name.Space == "" {
			return nil
		}
		return codecErr("found %s where <%s> was expected", describe(t), root)
	}
	return p.open(root)
}

// epilog reads the end of the root element and requires the input to
// end there, but for white space.
func (p *parser) epilog(root string) error {
	if err := p.close(root); err != nil {
		return err
	}
	for {
		t, err := p.d.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return codecErr("%v", err)
		}
		if cd, ok := t.(xml.CharData); !ok || len(bytes.TrimSpace(cd)) != 0 {
			return codecErr("content after </%s>", root)
		}
	}
}

// DecodeResponse reads a methodResponse: its one value, or a *Fault.
func DecodeResponse(r io.Reader) (any, error) {
	p := newParser(r)
	if err := p.prolog("methodResponse"); err != nil {
		return nil, err
	}
	t, err := p.next()
	if err != nil {
		return nil, err
	}
	se, ok := t.(xml.StartElement)
	if !ok {
		return nil, codecErr("found %s where <params> or <fault> was expected", describe(t))
	}
	switch se.Name.Local {
	case "params":
		if err := p.open("param"); err != nil {
			return nil, err
		}
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		if err := p.close("param"); err != nil {
			return nil, err
		}
		if err := p.close("params"); err != nil {
			return nil, err
		}
		if err := p.epilog("methodResponse"); err != nil {
			return nil, err
		}
		return v, nil
	case "fault":
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		if err := p.close("fault"); err != nil {
			return nil, err
		}
		if err := p.epilog("methodResponse"); err != nil {
			return nil, err
		}
		m, ok := v.(map[string]any)
		if !ok || len(m) != 2 {
			return nil, codecErr("a fault must be a struct of faultCode and faultString")
		}
		code, ok1 := m["faultCode"].(int64)
		s, ok2 := m["faultString"].(string)
		if !ok1 || !ok2 || code < math.MinInt32 || code > math.MaxInt32 {
			return nil, codecErr("a fault must be a struct of faultCode and faultString")
		}
		return nil, &Fault{Code: int(code), String: s}
	}
	return nil, codecErr("found <%s> where <params> or <fault> was expected", se.Name.Local)
}

// value reads a whole <value>...</value>.
func (p *parser) value() (any, error) {
	if err := p.open("value"); err != nil {
		return nil, err
	}
	return p.valueBody()
}

// valueBody reads what follows an opened <value>, up to its end.
func (p *parser) valueBody() (any, error) {
	var text []byte
	for {
		t, err := p.raw()
		if err != nil {
			return nil, err
		}
		switch x := t.(type) {
		case xml.CharData:
			text = append(text, x...)
		case xml.EndElement:
			// <value>text</value>: an untyped string.
			return string(text), nil
		case xml.StartElement:
			if len(bytes.TrimSpace(text)) != 0 {
				return nil, codecErr("text and <%s> in one value", x.Name.Local)
			}
			v, err := p.typed(x.Name.Local)
			if err != nil {
				return nil, err
			}
			if err := p.close("value"); err != nil {
				return nil, err
			}
			return v, nil
		}
	}
}

// floatRE is the form of a <double>: decimal, finite.
var floatRE = regexp.MustCompile(`^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$`)

// intRE is the form of an <int>, <i4> or <i8>.
var intRE = regexp.MustCompile(`^[+-]?[0-9]+$`)

// typed reads the element typ just opened, up to its end.
func (p *parser) typed(typ string) (any, error) {
	switch typ {
	case "array":
		return p.array()
	case "struct":
		return p.structure()
	case "nil":
		s, err := p.text()
		if err != nil {
			return nil, err
		}
		if s != "" {
			return nil, codecErr("<nil> with content")
		}
		return nil, nil
	case "string":
		return p.text()
	case "int", "i4", "i8":
		s, err := p.text()
		if err != nil {
			return nil, err
		}
		s = strings.TrimSpace(s)
		if !intRE.MatchString(s) {
			return nil, codecErr("<%s> %q is not an integer", typ, shorten(s))
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || (typ != "i8" && (n < math.MinInt32 || n > math.MaxInt32)) {
			return nil, codecErr("<%s> %q is out of range", typ, shorten(s))
		}
		return n, nil
	case "double":
		s, err := p.text()
		if err != nil {
			return nil, err
		}
		s = strings.TrimSpace(s)
		if !floatRE.MatchString(s) {
			return nil, codecErr("<double> %q is not a number", shorten(s))
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsInf(f, 0) {
			return nil, codecErr("<double> %q is out of range", shorten(s))
		}
		return f, nil
	case "boolean":
		s, err := p.text()
		if err != nil {
			return nil, err
		}
		switch strings.TrimSpace(s) {
		case "1":
			return true, nil
		case "0":
			return false, nil
		}
		return nil, codecErr("<boolean> %q is neither 0 nor 1", shorten(s))
	case "dateTime.iso8601":
		return nil, codecErr("<dateTime.iso8601> is not supported (Koji sends times as strings or doubles)")
	case "base64":
		return nil, codecErr("<base64> is not supported")
	}
	return nil, codecErr("unknown type <%s>", typ)
}

// text reads the character data of an element just opened, up to its end.
func (p *parser) text() (string, error) {
	var b []byte
	for {
		t, err := p.raw()
		if err != nil {
			return "", err
		}
		switch x := t.(type) {
		case xml.CharData:
			b = append(b, x...)
		case xml.EndElement:
			return string(b), nil
		default:
			return "", codecErr("found %s inside a scalar", describe(t))
		}
	}
}

func (p *parser) enter() error {
	p.depth++
	if p.depth > maxDepth {
		return codecErr("value nested more than %d deep", maxDepth)
	}
	return nil
}

func (p *parser) array() (any, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer func() { p.depth-- }()
	if err := p.open("data"); err != nil {
		return nil, err
	}
	out := []any{}
	for {
		t, err := p.next()
		if err != nil {
			return nil, err
		}
		switch x := t.(type) {
		case xml.StartElement:
			if x.Name.Local != "value" {
				return nil, codecErr("<%s> in an array", x.Name.Local)
			}
			v, err := p.valueBody()
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		case xml.EndElement: // </data>
			if err := p.close("array"); err != nil {
				return nil, err
			}
			return out, nil
		}
	}
}

func (p *parser) structure() (any, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer func() { p.depth-- }()
	out := map[string]any{}
	for {
		t, err := p.next()
		if err != nil {
			return nil, err
		}
		switch x := t.(type) {
		case xml.StartElement:
			if x.Name.Local != "member" {
				return nil, codecErr("<%s> in a struct", x.Name.Local)
			}
			if err := p.open("name"); err != nil {
				return nil, err
			}
			name, err := p.text()
			if err != nil {
				return nil, err
			}
			if _, dup := out[name]; dup {
				return nil, codecErr("member %q twice in a struct", shorten(name))
			}
			v, err := p.value()
			if err != nil {
				return nil, err
			}
			if err := p.close("member"); err != nil {
				return nil, err
			}
			out[name] = v
		case xml.EndElement: // </struct>
			return out, nil
		}
	}
}

// describe names a token for an error message.
func describe(t xml.Token) string {
	switch x := t.(type) {
	case xml.StartElement:
		return "<" + x.Name.Local + ">"
	case xml.EndElement:
		return "</" + x.Name.Local + ">"
	case xml.CharData:
		return fmt.Sprintf("text %q", shorten(string(x)))
	}
	return fmt.Sprintf("%T", t)
}

// EncodeResponse is the methodResponse document of v, as the hub sends
// one: for stand-in hubs in tests.
func EncodeResponse(v any) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("<?xml version='1.0'?>\n<methodResponse>\n<params>\n<param>\n")
	if err := encodeValue(&b, v, 0, false); err != nil {
		return nil, err
	}
	b.WriteString("</param>\n</params>\n</methodResponse>\n")
	return b.Bytes(), nil
}

// Fault is an XML-RPC fault the server answered with: its code (for Koji,
// its exception class) and its text, which may carry a traceback.
type Fault struct {
	Code   int
	String string
}

// Error returns the fault's message: the last line of faultString (the
// hub may send a traceback before it).
func (f *Fault) Error() string { return f.Message() }

// Message is the last non-empty line of faultString, e.g.
// "koji.ActionNotAllowed: host permission required" loses nothing but
// the traceback before it.
func (f *Fault) Message() string {
	s := strings.TrimSpace(f.String)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = strings.TrimSpace(s[i+1:])
	}
	return s
}

// shorten keeps an error message's quote of a document short.
func shorten(s string) string { return reply.Cut(s, 40) }
