package reliability_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quicconn/quicconn/conn"
	qerr "github.com/quicconn/quicconn/errors"
	"github.com/quicconn/quicconn/stream"
)

// invalidFields is the reference validator: the fields of a configuration
// whose values are out of range, by the documented rules (ALPN: at least one
// protocol, each 1 to 255 bytes; durations, counts, lengths and sizes not
// negative; stream counts at most 2^60, the most QUIC can express).
func invalidFields(alpn []string, s conn.Settings) map[string]bool {
	bad := make(map[string]bool)
	if len(alpn) == 0 {
		bad["ALPN"] = true
	}
	for i, p := range alpn {
		if len(p) == 0 || len(p) > 255 {
			bad["ALPN["+itoa(i)+"]"] = true
		}
	}
	for name, d := range map[string]time.Duration{
		"Settings.IdleTimeout": s.IdleTimeout, "Settings.HandshakeTimeout": s.HandshakeTimeout, "Settings.KeepAlive": s.KeepAlive,
	} {
		if d < 0 || d > 0 && d < time.Millisecond {
			bad[name] = true
		}
	}
	idle := s.IdleTimeout
	if idle == 0 {
		idle = conn.DefaultIdleTimeout
	}
	if s.KeepAlive != 0 && s.KeepAlive >= idle {
		bad["Settings.KeepAlive"] = true
	}
	if uint64(s.MaxMessageSize) > math.MaxUint32 && s.MaxMessageSize > 0 {
		bad["Settings.MaxMessageSize"] = true
	}
	if s.ConnectionReceiveWindow != 0 && s.ConnectionReceiveWindow < s.StreamReceiveWindow {
		bad["Settings.ConnectionReceiveWindow"] = true
	}
	for name, n := range map[string]int64{
		"Settings.PeerBidiStreamCount": s.PeerBidiStreamCount, "Settings.PeerUniStreamCount": s.PeerUniStreamCount,
	} {
		if n < 0 || n > 1<<60 {
			bad[name] = true
		}
	}
	if s.DatagramQueueLen < 0 {
		bad["Settings.DatagramQueueLen"] = true
	}
	if s.MaxMessageSize < 0 {
		bad["Settings.MaxMessageSize"] = true
	}
	return bad
}

func itoa(i int) string { return strconv.Itoa(i) }

// FuzzNewConfiguration: NewConfiguration never panics; a nil error means
// every value is in range (and the Configuration holds what was given, its
// ALPN a copy); an error is a *qerr.ConfigError that names a field whose
// value really is out of range.
func FuzzNewConfiguration(f *testing.F) {
	type seed struct {
		alpn         string // protocols separated by NUL; "\xff" alone means none
		idle, hs, ka int64
		bidi, uni    int64
		dgram        bool
		qlen         int
		swin, cwin   uint64
		maxMsg       int
	}
	seeds := []seed{
		{"h3", 0, 0, 0, 0, 0, false, 0, 0, 0, 0},
		{"\xff", 0, 0, 0, 0, 0, false, 0, 0, 0, 0},
		{"", 0, 0, 0, 0, 0, false, 0, 0, 0, 0},
		{"a\x00", 0, 0, 0, 0, 0, false, 0, 0, 0, 0},
		{strings.Repeat("x", 256), 0, 0, 0, 0, 0, false, 0, 0, 0, 0},
		{strings.Repeat("x", 255) + "\x00b", 1, 1, 1, 1, 1, true, 1, 1, 1, 1},
		{"p", -1, 0, 0, 0, 0, false, 0, 0, 0, 0},
		{"p", 0, -1, 0, 0, 0, false, 0, 0, 0, 0},
		{"p", 0, 0, -1, 0, 0, false, 0, 0, 0, 0},
		{"p", 0, 0, 0, -1, 0, false, 0, 0, 0, 0},
		{"p", 0, 0, 0, 0, -1, false, 0, 0, 0, 0},
		{"p", 0, 0, 0, 1 << 60, 1 << 60, false, 0, 0, 0, 0},
		{"p", 0, 0, 0, 1<<60 + 1, 0, false, 0, 0, 0, 0},
		{"p", 0, 0, 0, 0, 1<<60 + 1, false, 0, 0, 0, 0},
		{"p", 0, 0, 0, math.MaxInt64, math.MaxInt64, true, math.MaxInt, math.MaxUint64, math.MaxUint64, math.MaxInt},
		{"p", math.MinInt64, math.MinInt64, math.MinInt64, math.MinInt64, math.MinInt64, true, math.MinInt, 0, 0, math.MinInt},
		{"p", 0, 0, 0, 0, 0, true, -1, 0, 0, -1},
	}
	for _, s := range seeds {
		f.Add(s.alpn, s.idle, s.hs, s.ka, s.bidi, s.uni, s.dgram, s.qlen, s.swin, s.cwin, s.maxMsg)
	}
	f.Fuzz(func(t *testing.T, alpnList string, idle, hs, ka, bidi, uni int64, dgram bool, qlen int, swin, cwin uint64, maxMsg int) {
		var alpn []string
		if alpnList != "\xff" {
			alpn = strings.Split(alpnList, "\x00")
		}
		s := conn.Settings{
			IdleTimeout: time.Duration(idle), HandshakeTimeout: time.Duration(hs), KeepAlive: time.Duration(ka),
			PeerBidiStreamCount: bidi, PeerUniStreamCount: uni,
			DatagramReceiveEnabled: dgram, DatagramQueueLen: qlen,
			StreamReceiveWindow: swin, ConnectionReceiveWindow: cwin,
			MaxMessageSize: maxMsg,
		}
		given := append([]string(nil), alpn...)
		cfg, err := conn.NewConfiguration(alpn, s)
		bad := invalidFields(given, s)
		if err == nil {
			if cfg == nil {
				t.Fatal("nil Configuration with a nil error")
			}
			if len(bad) > 0 {
				t.Fatalf("accepted a configuration with invalid %v: %+v %q", keys(bad), s, given)
			}
			if cfg.Settings != s || len(cfg.ALPN) != len(given) {
				t.Fatalf("Configuration %+v does not hold what was given (%q, %+v)", cfg, given, s)
			}
			if len(alpn) > 0 {
				alpn[0] = "changed"
				if cfg.ALPN[0] != given[0] {
					t.Fatal("Configuration shares the caller's ALPN slice")
				}
			}
			return
		}
		if cfg != nil {
			t.Errorf("non-nil Configuration with error %v", err)
		}
		var ce *qerr.ConfigError
		if !errors.As(err, &ce) {
			t.Fatalf("error %v (%T) is not a *qerr.ConfigError", err, err)
		}
		if len(bad) == 0 {
			t.Fatalf("rejected a valid configuration: %v (%+v, %q)", err, s, given)
		}
		if !bad[ce.Field] {
			t.Fatalf("error names field %q, but the invalid fields are %v: %v", ce.Field, keys(bad), err)
		}
		if ce.Reason == "" || !strings.Contains(err.Error(), ce.Field) {
			t.Errorf("error %q does not say what is wrong with %s", err, ce.Field)
		}
	})
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// FuzzMessageReaderStream reads arbitrary bytes as a message stream
// (stream/ has no fuzz target for MessageReader): it never panics, every
// message respects the bound and re-encodes to exactly the bytes consumed,
// and the stream ends with io.EOF at a frame boundary or with one of the
// documented errors.
func FuzzMessageReaderStream(f *testing.F) {
	frame := func(msgs ...string) []byte {
		var b []byte
		for _, m := range msgs {
			b = binary.BigEndian.AppendUint32(b, uint32(len(m)))
			b = append(b, m...)
		}
		return b
	}
	f.Add(frame("hello", "", "world"), 16)
	f.Add(frame("too long for the bound"), 4)
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1, 2, 3}, 0)
	f.Add([]byte{0, 0, 0}, 0)
	f.Add(append(frame("ok"), 0, 0, 0, 9, 'x'), 100)
	f.Fuzz(func(t *testing.T, data []byte, max int) {
		bound := max
		if bound <= 0 {
			bound = stream.DefaultMaxMessageSize
		}
		// A reader that hands out one to seven bytes at a time, to exercise
		// partial prefixes and bodies.
		r := &trickle{data: data}
		mr := stream.NewMessageReader(r, max)
		var reencoded []byte
		for i := 0; ; i++ {
			if i > len(data)+1 {
				t.Fatal("more messages than bytes")
			}
			msg, err := mr.ReadMessage()
			if err == io.EOF {
				if !bytes.Equal(reencoded, data) {
					t.Fatalf("EOF after %d of %d bytes", len(reencoded), len(data))
				}
				return
			}
			if err != nil {
				var tl *qerr.MessageTooLargeError
				switch {
				case errors.As(err, &tl):
					if tl.Size <= uint64(bound) {
						t.Fatalf("MessageTooLarge for size %d within bound %d", tl.Size, bound)
					}
				case errors.Is(err, io.ErrUnexpectedEOF):
				default:
					t.Fatalf("unexpected error %v", err)
				}
				if !bytes.HasPrefix(data, reencoded) {
					t.Fatal("messages do not match the input")
				}
				if _, err2 := mr.ReadMessage(); err2 == nil || err2 == io.EOF {
					t.Fatalf("after %v, ReadMessage = %v", err, err2)
				}
				return
			}
			if len(msg) > bound {
				t.Fatalf("message of %d bytes over bound %d", len(msg), bound)
			}
			reencoded = binary.BigEndian.AppendUint32(reencoded, uint32(len(msg)))
			reencoded = append(reencoded, msg...)
			if !bytes.HasPrefix(data, reencoded) {
				t.Fatal("messages do not match the input")
			}
		}
	})
}

type trickle struct {
	data []byte
	n    int
}

func (r *trickle) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	r.n++
	k := min(len(p), len(r.data), 1+r.n%7)
	copy(p, r.data[:k])
	r.data = r.data[k:]
	return k, nil
}
