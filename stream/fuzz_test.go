package stream_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	qerr "github.com/quicconn/quicconn/errors"
	"github.com/quicconn/quicconn/stream"
)

// FuzzMessageReader checks, for arbitrary input and bound, that ReadMessage
// never panics, never returns a message longer than the bound, consumes the
// input exactly as the framing says, and that messages framed from the input
// round-trip through any read pattern.
func FuzzMessageReader(f *testing.F) {
	f.Add([]byte{}, uint16(0))
	f.Add([]byte{0, 0, 0, 0}, uint16(0))
	f.Add([]byte{0, 0, 0, 5, 'h', 'e', 'l', 'l', 'o'}, uint16(5))
	f.Add([]byte{0, 0, 0, 5, 'h', 'e', 'l', 'l', 'o'}, uint16(4))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff}, uint16(0))
	f.Add([]byte{0, 0, 0}, uint16(100))
	f.Add([]byte{0, 0, 0, 9, 'a'}, uint16(100))
	f.Add([]byte{0, 1, 0, 0, 0xff, 1, 2, 0xff, 0xff, 3}, uint16(65535))
	f.Add(bytes.Repeat([]byte{0, 0, 0, 1, 0xff}, 20), uint16(1))

	f.Fuzz(func(t *testing.T, data []byte, bound uint16) {
		limit := int(bound) // 0 means the default bound
		effective := limit
		if limit == 0 {
			effective = stream.DefaultMaxMessageSize
		}

		// 1. Arbitrary input: messages within the bound, exactly as framed.
		m := stream.NewMessageReader(bytes.NewReader(data), limit)
		rest := data
		for {
			msg, err := m.ReadMessage()
			if err == io.EOF {
				if len(rest) != 0 {
					t.Fatalf("EOF with %d bytes unread", len(rest))
				}
				break
			}
			if err != nil {
				checkParseError(t, err, rest, effective)
				break
			}
			if len(msg) > effective {
				t.Fatalf("message of %d bytes over the bound %d", len(msg), effective)
			}
			if msg == nil {
				t.Fatal("nil message")
			}
			if len(rest) < 4+len(msg) || int(binary.BigEndian.Uint32(rest)) != len(msg) || !bytes.Equal(rest[4:4+len(msg)], msg) {
				t.Fatalf("message %q does not match the input's framing", msg)
			}
			rest = rest[4+len(msg):]
		}

		// 2. Well-formed input: split data at 0xff bytes into messages,
		// frame them, and read them back through fragmenting readers.
		msgs := bytes.Split(data, []byte{0xff})
		longest := 0
		var framed []byte
		for _, msg := range msgs {
			longest = max(longest, len(msg))
			framed = binary.BigEndian.AppendUint32(framed, uint32(len(msg)))
			framed = append(framed, msg...)
		}
		readers := []io.Reader{
			bytes.NewReader(framed),
			iotest.OneByteReader(bytes.NewReader(framed)),
			iotest.HalfReader(bytes.NewReader(framed)),
			iotest.DataErrReader(bytes.NewReader(framed)),
		}
		for _, r := range readers {
			m := stream.NewMessageReader(r, max(longest, 1))
			for i, want := range msgs {
				got, err := m.ReadMessage()
				if err != nil {
					t.Fatalf("message %d of %d: %v", i, len(msgs), err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("message %d = %q, want %q", i, got, want)
				}
			}
			if _, err := m.ReadMessage(); err != io.EOF {
				t.Fatalf("after the last message: %v, want io.EOF", err)
			}
		}
	})
}

// checkParseError checks that the error ReadMessage returned for rest, the
// unread input, is the one the framing calls for.
func checkParseError(t *testing.T, err error, rest []byte, bound int) {
	t.Helper()
	if len(rest) < 4 {
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("%d-byte prefix: %v, want io.ErrUnexpectedEOF", len(rest), err)
		}
		return
	}
	size := uint64(binary.BigEndian.Uint32(rest))
	if size > uint64(bound) {
		var tooLarge *qerr.MessageTooLargeError
		if !errors.As(err, &tooLarge) || tooLarge.Size != size || tooLarge.Max != bound {
			t.Fatalf("prefix %d over bound %d: %v, want MessageTooLargeError", size, bound, err)
		}
		return
	}
	if uint64(len(rest)-4) >= size || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("prefix %d with %d bytes after it: %v, want io.ErrUnexpectedEOF", size, len(rest)-4, err)
	}
}
