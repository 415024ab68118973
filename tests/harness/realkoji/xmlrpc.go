package realkoji

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
)

// Kwargs are keyword arguments of a hub call: sent as a trailing struct
// with the member __starstar set, the way Koji's own client sends them.
type Kwargs map[string]any

// Fault is an XML-RPC fault the hub answered with.
type Fault struct {
	Code   int
	String string
}

// Error returns the fault's message: the last line of faultString (the hub
// may send a traceback before it).
func (f *Fault) Error() string {
	s := strings.TrimSpace(f.String)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return fmt.Sprintf("koji fault %d: %s", f.Code, s)
}

// encodeCall writes an XML-RPC methodCall of method with params.
func encodeCall(method string, params []any) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0"?><methodCall><methodName>`)
	if err := xml.EscapeText(&b, []byte(method)); err != nil {
		return nil, err
	}
	b.WriteString(`</methodName><params>`)
	for _, p := range params {
		b.WriteString("<param>")
		if err := encodeValue(&b, p); err != nil {
			return nil, err
		}
		b.WriteString("</param>")
	}
	b.WriteString(`</params></methodCall>`)
	return b.Bytes(), nil
}

func encodeValue(b *bytes.Buffer, v any) error {
	switch x := v.(type) {
	case []string:
		a := make([]any, len(x))
		for i, s := range x {
			a[i] = s
		}
		v = a
	case []int:
		a := make([]any, len(x))
		for i, n := range x {
			a[i] = n
		}
		v = a
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
	case int64:
		encodeInt(b, x)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return fmt.Errorf("xmlrpc: cannot send %v", x)
		}
		b.WriteString("<double>" + strconv.FormatFloat(x, 'g', -1, 64) + "</double>")
	case string:
		b.WriteString("<string>")
		if err := xml.EscapeText(b, []byte(x)); err != nil {
			return err
		}
		b.WriteString("</string>")
	case []any:
		b.WriteString("<array><data>")
		for _, e := range x {
			if err := encodeValue(b, e); err != nil {
				return err
			}
		}
		b.WriteString("</data></array>")
	case map[string]any:
		if err := encodeStruct(b, x, false); err != nil {
			return err
		}
	case Kwargs:
		if err := encodeStruct(b, x, true); err != nil {
			return err
		}
	default:
		return fmt.Errorf("xmlrpc: cannot send a %T", v)
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

func encodeStruct(b *bytes.Buffer, m map[string]any, starstar bool) error {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b.WriteString("<struct>")
	if starstar {
		b.WriteString("<member><name>__starstar</name><value><boolean>1</boolean></value></member>")
	}
	for _, k := range keys {
		b.WriteString("<member><name>")
		if err := xml.EscapeText(b, []byte(k)); err != nil {
			return err
		}
		b.WriteString("</name>")
		if err := encodeValue(b, m[k]); err != nil {
			return err
		}
		b.WriteString("</member>")
	}
	b.WriteString("</struct>")
	return nil
}

// decodeResponse reads a methodResponse: its one value, or a *Fault.
func decodeResponse(r io.Reader) (any, error) {
	d := xml.NewDecoder(r)
	if err := expectStart(d, "methodResponse"); err != nil {
		return nil, err
	}
	se, err := nextStart(d)
	if err != nil {
		return nil, err
	}
	switch se.Name.Local {
	case "params":
		if err := expectStart(d, "param"); err != nil {
			return nil, err
		}
		if err := expectStart(d, "value"); err != nil {
			return nil, err
		}
		return decodeValue(d)
	case "fault":
		if err := expectStart(d, "value"); err != nil {
			return nil, err
		}
		v, err := decodeValue(d)
		if err != nil {
			return nil, err
		}
		m, ok := v.(map[string]any)
		if !ok {
			return nil, errors.New("xmlrpc: fault is not a struct")
		}
		code, _ := m["faultCode"].(int64)
		s, _ := m["faultString"].(string)
		return nil, &Fault{Code: int(code), String: s}
	}
	return nil, fmt.Errorf("xmlrpc: unexpected <%s>", se.Name.Local)
}

func nextStart(d *xml.Decoder) (xml.StartElement, error) {
	for {
		t, err := d.Token()
		if err != nil {
			return xml.StartElement{}, fmt.Errorf("xmlrpc: %w", err)
		}
		switch x := t.(type) {
		case xml.StartElement:
			return x, nil
		case xml.EndElement:
			return xml.StartElement{}, fmt.Errorf("xmlrpc: unexpected </%s>", x.Name.Local)
		}
	}
}

func expectStart(d *xml.Decoder, name string) error {
	se, err := nextStart(d)
	if err != nil {
		return err
	}
	if se.Name.Local != name {
		return fmt.Errorf("xmlrpc: got <%s>, want <%s>", se.Name.Local, name)
	}
	return nil
}

// decodeValue reads what follows an opened <value> up to and including
// its </value>.
func decodeValue(d *xml.Decoder) (any, error) {
	var text strings.Builder
	for {
		t, err := d.Token()
		if err != nil {
			return nil, fmt.Errorf("xmlrpc: %w", err)
		}
		switch x := t.(type) {
		case xml.CharData:
			text.Write(x)
		case xml.EndElement:
			// <value>text</value>: an untyped string.
			return text.String(), nil
		case xml.StartElement:
			v, err := decodeTyped(d, x.Name.Local)
			if err != nil {
				return nil, err
			}
			// Up to </value>.
			for {
				t, err := d.Token()
				if err != nil {
					return nil, fmt.Errorf("xmlrpc: %w", err)
				}
				if _, ok := t.(xml.EndElement); ok {
					return v, nil
				}
				if _, ok := t.(xml.StartElement); ok {
					return nil, errors.New("xmlrpc: two types in one value")
				}
			}
		}
	}
}

// decodeTyped reads the element typ just opened, up to its end.
func decodeTyped(d *xml.Decoder, typ string) (any, error) {
	switch typ {
	case "nil":
		return nil, d.Skip()
	case "array":
		if err := expectStart(d, "data"); err != nil {
			return nil, err
		}
		out := []any{}
		for {
			t, err := d.Token()
			if err != nil {
				return nil, fmt.Errorf("xmlrpc: %w", err)
			}
			switch x := t.(type) {
			case xml.StartElement:
				if x.Name.Local != "value" {
					return nil, fmt.Errorf("xmlrpc: <%s> in an array", x.Name.Local)
				}
				v, err := decodeValue(d)
				if err != nil {
					return nil, err
				}
				out = append(out, v)
			case xml.EndElement: // </data>
				return out, d.Skip()
			}
		}
	case "struct":
		out := map[string]any{}
		for {
			t, err := d.Token()
			if err != nil {
				return nil, fmt.Errorf("xmlrpc: %w", err)
			}
			switch x := t.(type) {
			case xml.StartElement:
				if x.Name.Local != "member" {
					return nil, fmt.Errorf("xmlrpc: <%s> in a struct", x.Name.Local)
				}
				name, v, err := decodeMember(d)
				if err != nil {
					return nil, err
				}
				out[name] = v
			case xml.EndElement: // </struct>
				return out, nil
			}
		}
	}
	var s string
	if err := d.DecodeElement(&s, &xml.StartElement{Name: xml.Name{Local: typ}}); err != nil {
		return nil, fmt.Errorf("xmlrpc: %w", err)
	}
	switch typ {
	case "string":
		return s, nil
	case "int", "i4", "i8":
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("xmlrpc: %s %q: %w", typ, s, err)
		}
		return n, nil
	case "double":
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			return nil, fmt.Errorf("xmlrpc: double %q: %w", s, err)
		}
		return f, nil
	case "boolean":
		switch strings.TrimSpace(s) {
		case "1":
			return true, nil
		case "0":
			return false, nil
		}
		return nil, fmt.Errorf("xmlrpc: boolean %q", s)
	}
	return nil, fmt.Errorf("xmlrpc: unsupported type <%s>", typ)
}

func decodeMember(d *xml.Decoder) (string, any, error) {
	var name string
	var val any
	seenValue := false
	for {
		t, err := d.Token()
		if err != nil {
			return "", nil, fmt.Errorf("xmlrpc: %w", err)
		}
		switch x := t.(type) {
		case xml.StartElement:
			switch x.Name.Local {
			case "name":
				if err := d.DecodeElement(&name, &x); err != nil {
					return "", nil, fmt.Errorf("xmlrpc: %w", err)
				}
			case "value":
				if val, err = decodeValue(d); err != nil {
					return "", nil, err
				}
				seenValue = true
			default:
				return "", nil, fmt.Errorf("xmlrpc: <%s> in a member", x.Name.Local)
			}
		case xml.EndElement: // </member>
			if !seenValue {
				return "", nil, fmt.Errorf("xmlrpc: member %q has no value", name)
			}
			return name, val, nil
		}
	}
}
