package h3wire

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/quic-go/qpack"
)

// MaxFieldSectionSize bounds a header block this package decodes and is what
// it advertises in SETTINGS_MAX_FIELD_SECTION_SIZE.
const MaxFieldSectionSize = 64 << 10

// EncodeFields returns the QPACK header block for fields. The encoder uses
// the static table and literals only, so the block needs no encoder stream.
func EncodeFields(fields []qpack.HeaderField) []byte {
	var buf bytes.Buffer
	enc := qpack.NewEncoder(&buf)
	for _, f := range fields {
		// Writes to a bytes.Buffer cannot fail.
		_ = enc.WriteField(f)
	}
	_ = enc.Close()
	return buf.Bytes()
}

// DecodeFields decodes a header block. A block that references the dynamic
// table (which this side never allowed) or is malformed is a connection error
// QPACK_DECOMPRESSION_FAILED (RFC 9204 section 2.2.3).
func DecodeFields(block []byte) ([]qpack.HeaderField, error) {
	dec := qpack.NewDecoder()
	next := dec.Decode(block)
	var fields []qpack.HeaderField
	for {
		f, err := next()
		if err == io.EOF {
			return fields, nil
		}
		if err != nil {
			return nil, ConnError(QPACKDecompressionFailed, "%v", err)
		}
		fields = append(fields, f)
	}
}

// connectionSpecific are the fields HTTP/3 forbids (RFC 9114 section 4.2).
var connectionSpecific = map[string]bool{
	"connection": true, "keep-alive": true, "proxy-connection": true,
	"transfer-encoding": true, "upgrade": true,
}

// splitFields checks the rules common to requests and responses (lower-case
// names, pseudo-header fields first and once each, no connection-specific
// fields) and separates pseudo-header fields from the rest. Every violation
// makes the message malformed: a stream error H3_MESSAGE_ERROR.
func splitFields(fields []qpack.HeaderField, allowed map[string]bool) (map[string]string, http.Header, error) {
	pseudo := make(map[string]string)
	hdr := make(http.Header)
	regular := false
	for _, f := range fields {
		if f.Name == "" {
			return nil, nil, StreamError(MessageError, "empty field name")
		}
		if strings.ToLower(f.Name) != f.Name {
			return nil, nil, StreamError(MessageError, "upper-case field name %q", f.Name)
		}
		if strings.ContainsAny(f.Value, "\r\n\x00") {
			return nil, nil, StreamError(MessageError, "invalid character in field %q", f.Name)
		}
		if f.IsPseudo() {
			if regular {
				return nil, nil, StreamError(MessageError, "pseudo-header %s after regular fields", f.Name)
			}
			if !allowed[f.Name] {
				return nil, nil, StreamError(MessageError, "unknown pseudo-header %s", f.Name)
			}
			if _, dup := pseudo[f.Name]; dup {
				return nil, nil, StreamError(MessageError, "duplicate pseudo-header %s", f.Name)
			}
			pseudo[f.Name] = f.Value
			continue
		}
		regular = true
		if connectionSpecific[f.Name] || (f.Name == "te" && f.Value != "trailers") {
			return nil, nil, StreamError(MessageError, "connection-specific field %s", f.Name)
		}
		hdr.Add(f.Name, f.Value)
	}
	return pseudo, hdr, nil
}

var requestPseudo = map[string]bool{":method": true, ":scheme": true, ":authority": true, ":path": true}
var responsePseudo = map[string]bool{":status": true}

// RequestFromFields builds a server-side request from a decoded header block.
// The request's Body is left nil; Proto is "HTTP/3".
func RequestFromFields(fields []qpack.HeaderField) (*http.Request, error) {
	pseudo, hdr, err := splitFields(fields, requestPseudo)
	if err != nil {
		return nil, err
	}
	method := pseudo[":method"]
	if method == "" {
		return nil, StreamError(MessageError, "missing :method")
	}
	if method == http.MethodConnect {
		if pseudo[":authority"] == "" || pseudo[":scheme"] != "" || pseudo[":path"] != "" {
			return nil, StreamError(MessageError, "malformed CONNECT request")
		}
	} else if pseudo[":scheme"] == "" || pseudo[":path"] == "" {
		return nil, StreamError(MessageError, "missing :scheme or :path")
	}
	authority := pseudo[":authority"]
	if authority == "" {
		authority = hdr.Get("Host")
	}
	u := &url.URL{Path: "/"}
	requestURI := pseudo[":path"]
	if method != http.MethodConnect {
		if requestURI != "*" && !strings.HasPrefix(requestURI, "/") {
			return nil, StreamError(MessageError, "invalid :path %q", requestURI)
		}
		if u, err = url.ParseRequestURI(requestURI); err != nil && requestURI != "*" {
			return nil, StreamError(MessageError, "invalid :path %q", requestURI)
		}
		if u == nil {
			u = &url.URL{Path: "*"}
		}
		u.Scheme = pseudo[":scheme"]
		u.Host = authority
	}
	req := &http.Request{
		Method:     method,
		URL:        u,
		Proto:      "HTTP/3.0",
		ProtoMajor: 3,
		Header:     hdr,
		Host:       authority,
		RequestURI: requestURI,
	}
	req.ContentLength = -1
	if cl := hdr.Get("Content-Length"); cl != "" {
		n, err := strconv.ParseInt(cl, 10, 64)
		if err != nil || n < 0 {
			return nil, StreamError(MessageError, "invalid content-length %q", cl)
		}
		req.ContentLength = n
	}
	return req, nil
}

// RequestFields returns the header fields of a client request.
func RequestFields(req *http.Request, contentLength int64) ([]qpack.HeaderField, error) {
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	if host == "" {
		return nil, errors.New("h3: request has no host")
	}
	path := req.URL.RequestURI()
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	fields := []qpack.HeaderField{
		{Name: ":method", Value: method},
		{Name: ":scheme", Value: "https"},
		{Name: ":authority", Value: host},
		{Name: ":path", Value: path},
	}
	for name, values := range req.Header {
		lower := strings.ToLower(name)
		if connectionSpecific[lower] || lower == "host" || lower == "content-length" {
			continue
		}
		for _, v := range values {
			fields = append(fields, qpack.HeaderField{Name: lower, Value: v})
		}
	}
	if contentLength >= 0 && (contentLength > 0 || method == http.MethodPost || method == http.MethodPut) {
		fields = append(fields, qpack.HeaderField{Name: "content-length", Value: strconv.FormatInt(contentLength, 10)})
	}
	return fields, nil
}

// ResponseFields returns the header fields of a response.
func ResponseFields(status int, hdr http.Header) []qpack.HeaderField {
	fields := []qpack.HeaderField{{Name: ":status", Value: strconv.Itoa(status)}}
	for name, values := range hdr {
		lower := strings.ToLower(name)
		if connectionSpecific[lower] {
			continue
		}
		for _, v := range values {
			fields = append(fields, qpack.HeaderField{Name: lower, Value: v})
		}
	}
	return fields
}

// ResponseFromFields parses a response header block into its status and
// fields.
func ResponseFromFields(fields []qpack.HeaderField) (int, http.Header, error) {
	pseudo, hdr, err := splitFields(fields, responsePseudo)
	if err != nil {
		return 0, nil, err
	}
	s := pseudo[":status"]
	status, err := strconv.Atoi(s)
	if err != nil || len(s) != 3 || status < 100 {
		return 0, nil, StreamError(MessageError, "invalid :status %q", s)
	}
	return status, hdr, nil
}

// TrailerFromFields parses a trailer section: no pseudo-header fields.
func TrailerFromFields(fields []qpack.HeaderField) (http.Header, error) {
	_, hdr, err := splitFields(fields, nil)
	if err != nil {
		return nil, fmt.Errorf("trailers: %w", err)
	}
	return hdr, nil
}
