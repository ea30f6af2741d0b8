package h3wire

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/quic-go/qpack"
)

func TestVarintRoundTrip(t *testing.T) {
	for _, v := range []uint64{0, 63, 64, 16383, 16384, 1<<30 - 1, 1 << 30, MaxVarint} {
		b := AppendVarint(nil, v)
		if len(b) != VarintLen(v) {
			t.Errorf("%d: %d bytes, VarintLen %d", v, len(b), VarintLen(v))
		}
		got, err := ReadVarint(bytes.NewReader(b))
		if err != nil || got != v {
			t.Errorf("%d: read %d, %v", v, got, err)
		}
		if got, n := ConsumeVarint(b); got != v || n != len(b) {
			t.Errorf("%d: consume %d, %d", v, got, n)
		}
		if len(b) > 1 {
			if _, err := ReadVarint(bytes.NewReader(b[:len(b)-1])); err != io.ErrUnexpectedEOF {
				t.Errorf("%d truncated: %v, want io.ErrUnexpectedEOF", v, err)
			}
		}
	}
}

func TestFrameReader(t *testing.T) {
	var b []byte
	b = AppendFrame(b, 0x21, []byte("grease"))
	b = AppendFrame(b, FrameData, []byte("hello"))
	b = AppendFrame(b, FrameData, nil)
	fr := NewFrameReader(bytes.NewReader(b))
	ft, n, err := fr.Next()
	if err != nil || ft != 0x21 || n != 6 {
		t.Fatalf("first frame: %v %d %v", ft, n, err)
	}
	// Next skips the unread grease payload.
	if ft, n, err = fr.Next(); err != nil || ft != FrameData || n != 5 {
		t.Fatalf("second frame: %v %d %v", ft, n, err)
	}
	if p, err := io.ReadAll(fr); err != nil || string(p) != "hello" {
		t.Fatalf("payload %q %v", p, err)
	}
	if ft, n, err = fr.Next(); err != nil || ft != FrameData || n != 0 {
		t.Fatalf("empty frame: %v %d %v", ft, n, err)
	}
	if _, _, err = fr.Next(); err != io.EOF {
		t.Fatalf("end: %v, want io.EOF", err)
	}
}

func TestFrameReaderTruncated(t *testing.T) {
	full := AppendFrame(nil, FrameHeaders, []byte("abcdef"))
	for cut := 1; cut < len(full); cut++ {
		fr := NewFrameReader(bytes.NewReader(full[:cut]))
		_, _, err := fr.Next()
		if err == nil {
			err = fr.Skip()
		}
		var he *Error
		if !errors.As(err, &he) || he.Code != FrameError || !he.Conn {
			t.Errorf("cut at %d: %v, want connection error H3_FRAME_ERROR", cut, err)
		}
	}
}

func TestParseSettings(t *testing.T) {
	enc := func(kv ...uint64) []byte {
		var b []byte
		for _, v := range kv {
			b = AppendVarint(b, v)
		}
		return b
	}
	cases := []struct {
		name string
		p    []byte
		code Code // 0: valid
	}{
		{"empty", nil, 0},
		{"ours", enc(0x01, 0, 0x07, 0, 0x06, 65536), 0},
		{"grease identifier", enc(0x21+0x1f*2, 7), 0},
		{"duplicate", enc(0x01, 0, 0x01, 0), SettingsError},
		{"HTTP/2 identifier", enc(0x04, 100), SettingsError},
		{"truncated value", enc(0x01), FrameError},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseSettings(tc.p)
			var he *Error
			switch {
			case tc.code == 0 && err != nil:
				t.Fatalf("unexpected error %v", err)
			case tc.code != 0 && (!errors.As(err, &he) || he.Code != tc.code):
				t.Fatalf("got %v, want %s", err, tc.code)
			}
		})
	}
}

func TestRequestFromFields(t *testing.T) {
	base := []qpack.HeaderField{
		{Name: ":method", Value: "GET"}, {Name: ":scheme", Value: "https"},
		{Name: ":authority", Value: "example.test:443"}, {Name: ":path", Value: "/a/b?x=1"},
	}
	req, err := RequestFromFields(append(base, qpack.HeaderField{Name: "accept", Value: "text/html"}))
	if err != nil {
		t.Fatal(err)
	}
	if req.Method != "GET" || req.URL.Path != "/a/b" || req.URL.RawQuery != "x=1" || req.Host != "example.test:443" ||
		req.Header.Get("Accept") != "text/html" || req.ProtoMajor != 3 {
		t.Fatalf("request %+v", req)
	}
	bad := map[string][]qpack.HeaderField{
		"duplicate :path":     append(base, qpack.HeaderField{Name: ":path", Value: "/"}),
		"unknown pseudo":      append(base, qpack.HeaderField{Name: ":foo", Value: "x"}),
		"te other than trail": append(base, qpack.HeaderField{Name: "te", Value: "gzip"}),
		"relative :path":      {base[0], base[1], base[2], {Name: ":path", Value: "a"}},
		"bad content-length":  append(base, qpack.HeaderField{Name: "content-length", Value: "-1"}),
	}
	for name, f := range bad {
		var he *Error
		if _, err := RequestFromFields(f); !errors.As(err, &he) || he.Code != MessageError || he.Conn {
			t.Errorf("%s: %v, want stream error H3_MESSAGE_ERROR", name, err)
		}
	}
}

func TestHeaderBlockRoundTrip(t *testing.T) {
	in := ResponseFields(404, map[string][]string{"Content-Type": {"text/plain"}, "X-Two": {"a", "b"}})
	out, err := DecodeFields(EncodeFields(in))
	if err != nil {
		t.Fatal(err)
	}
	status, hdr, err := ResponseFromFields(out)
	if err != nil || status != 404 || hdr.Get("Content-Type") != "text/plain" || len(hdr.Values("X-Two")) != 2 {
		t.Fatalf("got %d %v %v", status, hdr, err)
	}
}
