package stream_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"runtime"
	"slices"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	qerr "github.com/quicconn/quicconn/errors"
	"github.com/quicconn/quicconn/stream"
)

// frame encodes msgs in the message framing.
func frame(msgs ...[]byte) []byte {
	var b []byte
	for _, m := range msgs {
		b = binary.BigEndian.AppendUint32(b, uint32(len(m)))
		b = append(b, m...)
	}
	return b
}

func TestMessageRoundTrip(t *testing.T) {
	const max = 1 << 20
	c, s := newConnPair(t, nil)
	cq, sq := openUni(t, c, s)
	sender := stream.NewSendStream(cq, max)
	reader := stream.NewMessageReader(stream.NewReadStream(sq), max)

	if sender.ID() != int64(cq.StreamID()) {
		t.Errorf("ID = %d, want %d", sender.ID(), cq.StreamID())
	}
	// Sizes around the point where Send stops coalescing prefix and body.
	sizes := []int{0, 1, 100, 1024, 4092, 4093, 4096, 64 << 10, 100_000, max}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		for _, n := range sizes {
			if err := sender.Send(ctx, pattern(n)); err != nil {
				t.Errorf("Send(%d bytes): %v", n, err)
				return
			}
		}
		if err := sender.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}()
	for _, n := range sizes {
		msg, err := reader.ReadMessage()
		if err != nil {
			t.Fatalf("ReadMessage (want %d bytes): %v", n, err)
		}
		if msg == nil {
			t.Fatalf("ReadMessage returned a nil slice for a %d-byte message", n)
		}
		if !bytes.Equal(msg, pattern(n)) {
			t.Fatalf("message of %d bytes differs from the %d-byte one sent", len(msg), n)
		}
	}
	if msg, err := reader.ReadMessage(); err != io.EOF || msg != nil {
		t.Errorf("ReadMessage at the end = %v, %v; want nil, bare io.EOF", msg, err)
	}
}

func TestSendTooLarge(t *testing.T) {
	c, s := newConnPair(t, nil)
	cq, sq := openUni(t, c, s)
	sender := stream.NewSendStream(cq, 1000)
	reader := stream.NewMessageReader(stream.NewReadStream(sq), 0)

	err := sender.Send(context.Background(), make([]byte, 1001))
	wantOp(t, err, "send message")
	var tooLarge *qerr.MessageTooLargeError
	if !errors.As(err, &tooLarge) || tooLarge.Size != 1001 || tooLarge.Max != 1000 {
		t.Fatalf("Send(1001 bytes) = %v, want MessageTooLargeError{1001, 1000}", err)
	}
	// Nothing was written: the next message is the first the peer sees.
	sender.Send(context.Background(), []byte("fits"))
	sender.Close()
	msg, err := reader.ReadMessage()
	if err != nil || string(msg) != "fits" {
		t.Errorf("peer's first message = %q, %v; want \"fits\"", msg, err)
	}
	if _, err := reader.ReadMessage(); err != io.EOF {
		t.Errorf("then %v, want io.EOF", err)
	}
}

func TestSendContext(t *testing.T) {
	c, s := newConnPair(t, smallWindow())
	cq, sq := openUni(t, c, s)
	sender := stream.NewSendStream(cq, 0)
	reader := stream.NewMessageReader(stream.NewReadStream(sq), 0)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := sender.Send(ctx, []byte("x")); !errors.Is(err, context.Canceled) {
		t.Errorf("Send with a cancelled context = %v, want context.Canceled", err)
	}
	if err := sender.Send(context.Background(), []byte("first")); err != nil {
		t.Fatalf("Send: %v", err)
	}

	// A message far larger than the peer's window blocks until ctx ends.
	ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := sender.Send(ctx, make([]byte, 1<<20))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("blocked Send = %v, want context.DeadlineExceeded", err)
	}
	wantOp(t, err, "send message")
	if elapsed := time.Since(start); elapsed > 150*time.Millisecond {
		t.Errorf("Send returned after %v, want about 50ms", elapsed)
	}

	// Half a message went out: the stream is out of step for messages.
	if err := sender.Send(context.Background(), []byte("x")); !errors.Is(err, qerr.ErrClosed) {
		t.Errorf("Send after an interrupted one = %v, want ErrClosed", err)
	}
	sender.Close()
	if msg, err := reader.ReadMessage(); err != nil || string(msg) != "first" {
		t.Fatalf("ReadMessage = %q, %v; want \"first\"", msg, err)
	}
	if _, err := reader.ReadMessage(); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("ReadMessage of the cut message = %v, want io.ErrUnexpectedEOF", err)
	}
}

func TestSendStreamCancelWrite(t *testing.T) {
	c, s := newConnPair(t, nil)
	cq, sq := openUni(t, c, s)
	sender := stream.NewSendStream(cq, 0)
	reader := stream.NewMessageReader(stream.NewReadStream(sq), 0)

	sender.CancelWrite(11)
	err := sender.Send(context.Background(), []byte("x"))
	wantStreamError(t, err, "send message", qerr.Stopped, false, 11)
	_, err = reader.ReadMessage()
	wantStreamError(t, err, "read", qerr.Reset, true, 11)
}

// sizeTooLarge is a length prefix of 4 GiB - 1, far above any bound.
var sizeTooLarge = []byte{0xff, 0xff, 0xff, 0xff, 'x'}

func TestMessageReader(t *testing.T) {
	tests := []struct {
		name  string
		input io.Reader
		max   int
		want  [][]byte // messages before the final error
		check func(t *testing.T, err error)
	}{
		{
			name:  "clean end between messages is bare EOF",
			input: bytes.NewReader(frame([]byte("a"), []byte("bc"))),
			want:  [][]byte{[]byte("a"), []byte("bc")},
			check: isBareEOF,
		},
		{
			name:  "empty stream is bare EOF",
			input: bytes.NewReader(nil),
			check: isBareEOF,
		},
		{
			name:  "zero-length message is empty, not nil",
			input: bytes.NewReader(frame([]byte{}, []byte("z"))),
			want:  [][]byte{{}, []byte("z")},
			check: isBareEOF,
		},
		{
			name:  "truncated length prefix",
			input: bytes.NewReader([]byte{0, 0}),
			check: isUnexpectedEOF,
		},
		{
			name:  "truncated body",
			input: bytes.NewReader(frame([]byte("hello"))[:7]),
			check: isUnexpectedEOF,
		},
		{
			name:  "truncated after a whole message",
			input: bytes.NewReader(append(frame([]byte("ok")), 0, 0, 0, 9, 'a')),
			want:  [][]byte{[]byte("ok")},
			check: isUnexpectedEOF,
		},
		{
			name:  "4 GiB length prefix",
			input: bytes.NewReader(sizeTooLarge),
			check: isTooLarge(1<<32-1, stream.DefaultMaxMessageSize),
		},
		{
			name:  "one byte over the bound",
			input: bytes.NewReader(frame(make([]byte, 11))),
			max:   10,
			check: isTooLarge(11, 10),
		},
		{
			name:  "exactly the bound",
			input: bytes.NewReader(frame(pattern(10))),
			max:   10,
			want:  [][]byte{pattern(10)},
			check: isBareEOF,
		},
		{
			name:  "one byte at a time",
			input: iotest.OneByteReader(bytes.NewReader(frame([]byte("slow"), []byte{}, pattern(300)))),
			want:  [][]byte{[]byte("slow"), {}, pattern(300)},
			check: isBareEOF,
		},
		{
			name:  "EOF delivered with the last bytes",
			input: iotest.DataErrReader(bytes.NewReader(frame([]byte("x"), []byte{}))),
			want:  [][]byte{[]byte("x"), {}},
			check: isBareEOF,
		},
		{
			name:  "body larger than the first buffer grows",
			input: iotest.HalfReader(bytes.NewReader(frame(pattern(300 << 10)))),
			want:  [][]byte{pattern(300 << 10)},
			check: isBareEOF,
		},
		{
			name:  "reader error is returned",
			input: io.MultiReader(bytes.NewReader(frame([]byte("a"))), iotest.ErrReader(errBoom)),
			want:  [][]byte{[]byte("a")},
			check: func(t *testing.T, err error) {
				if !errors.Is(err, errBoom) {
					t.Errorf("got %v, want the reader's error", err)
				}
				wantOp(t, err, "read message")
			},
		},
		{
			name:  "reader that never progresses",
			input: emptyReader{},
			check: func(t *testing.T, err error) {
				if !errors.Is(err, io.ErrNoProgress) {
					t.Errorf("got %v, want io.ErrNoProgress", err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := stream.NewMessageReader(tt.input, tt.max)
			for i, want := range tt.want {
				got, err := m.ReadMessage()
				if err != nil {
					t.Fatalf("message %d: %v", i, err)
				}
				if got == nil || !bytes.Equal(got, want) {
					t.Fatalf("message %d = %q (nil: %v), want %q", i, got, got == nil, want)
				}
			}
			msg, err := m.ReadMessage()
			if msg != nil {
				t.Errorf("got message %q with the final error", msg)
			}
			tt.check(t, err)
		})
	}
}

var errBoom = errors.New("boom")

type emptyReader struct{}

func (emptyReader) Read([]byte) (int, error) { return 0, nil }

func isBareEOF(t *testing.T, err error) {
	t.Helper()
	if err != io.EOF {
		t.Errorf("got %v (%T), want bare io.EOF", err, err)
	}
}

func isUnexpectedEOF(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("got %v, want io.ErrUnexpectedEOF", err)
	}
	wantOp(t, err, "read message")
}

func isTooLarge(size uint64, max int) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		t.Helper()
		var tooLarge *qerr.MessageTooLargeError
		if !errors.As(err, &tooLarge) {
			t.Fatalf("got %v, want *MessageTooLargeError", err)
		}
		if tooLarge.Size != size || tooLarge.Max != max {
			t.Errorf("MessageTooLargeError{Size: %d, Max: %d}, want {%d, %d}", tooLarge.Size, tooLarge.Max, size, max)
		}
		wantOp(t, err, "read message")
	}
}

func TestMessageReaderErrorsAreSticky(t *testing.T) {
	for name, input := range map[string][]byte{
		"too large": append(append([]byte{}, sizeTooLarge...), frame([]byte("next"))...),
		"truncated": {0, 0, 0},
	} {
		t.Run(name, func(t *testing.T) {
			m := stream.NewMessageReader(bytes.NewReader(input), 0)
			_, first := m.ReadMessage()
			_, second := m.ReadMessage()
			if first == nil || second != first {
				t.Errorf("second call = %v, want the first error %v again", second, first)
			}
		})
	}
}

// timeoutReader returns a deadline error every other call, as a stream read
// with a short deadline might.
type timeoutReader struct {
	r    io.Reader
	tick bool
}

func (tr *timeoutReader) Read(p []byte) (int, error) {
	tr.tick = !tr.tick
	if tr.tick {
		return 0, os.ErrDeadlineExceeded
	}
	return tr.r.Read(p)
}

func TestMessageReaderResumesAfterTimeout(t *testing.T) {
	want := [][]byte{[]byte("resumable"), {}, pattern(1000)}
	m := stream.NewMessageReader(&timeoutReader{r: iotest.OneByteReader(bytes.NewReader(frame(want...)))}, 0)
	var got [][]byte
	timeouts := 0
	for {
		msg, err := m.ReadMessage()
		if err == io.EOF {
			break
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			timeouts++
			continue
		}
		if err != nil {
			t.Fatalf("ReadMessage: %v", err)
		}
		got = append(got, msg)
	}
	if len(got) != len(want) {
		t.Fatalf("got %d messages, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Errorf("message %d = %q, want %q", i, got[i], want[i])
		}
	}
	if timeouts == 0 {
		t.Error("the reader never timed out; the test proves nothing")
	}
}

// TestTooLargeAllocatesNothingLarge checks that a huge length prefix is
// rejected before a buffer for it exists: the whole call allocates a few
// small objects (the error values), not megabytes.
func TestTooLargeAllocatesNothingLarge(t *testing.T) {
	for _, tc := range []struct {
		name   string
		prefix []byte
		max    int
	}{
		{"4 GiB prefix, default bound", sizeTooLarge, 0},
		{"bound + 1", binary.BigEndian.AppendUint32(nil, stream.DefaultMaxMessageSize+1), 0},
		{"2 GiB prefix, 1 GiB bound", binary.BigEndian.AppendUint32(nil, 1<<31), 1 << 30},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := bytes.NewReader(tc.prefix)
			readOnce := func() {
				r.Reset(tc.prefix)
				_, err := stream.NewMessageReader(r, tc.max).ReadMessage()
				if _, ok := errors.AsType[*qerr.MessageTooLargeError](err); !ok {
					t.Fatalf("ReadMessage = %v, want MessageTooLargeError", err)
				}
			}
			// Warm up first: the first call in a process pays one-time
			// runtime costs unrelated to the message. TotalAlloc counts the
			// whole process, so the bound leaves room for the runtime's own
			// small allocations while staying far below any body buffer
			// (the reader's smallest is 64 KiB).
			readOnce()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			readOnce()
			runtime.ReadMemStats(&after)
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 16<<10 {
				t.Errorf("rejecting the prefix allocated %d bytes", grew)
			}
			allocs := testing.AllocsPerRun(100, readOnce)
			// NewMessageReader, the MessageTooLargeError and its OpError.
			if allocs > 3 {
				t.Errorf("%v allocations per rejected prefix, want at most 3", allocs)
			}
		})
	}
}

func TestLargeAnnouncedSizeAllocatesAsDataArrives(t *testing.T) {
	// A peer that announces 16 MiB and sends 10 bytes must not cost 16 MiB.
	input := append(binary.BigEndian.AppendUint32(nil, stream.DefaultMaxMessageSize), "0123456789"...)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := stream.NewMessageReader(bytes.NewReader(input), 0).ReadMessage()
	runtime.ReadMemStats(&after)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("ReadMessage = %v, want io.ErrUnexpectedEOF", err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 256<<10 {
		t.Errorf("a 10-byte partial body allocated %d bytes", grew)
	}
}

// TestMessageWriterRoundTrip writes messages of sizes around the point
// where WriteMessage stops coalescing with a MessageWriter and reads them
// back with a MessageReader: the bytes are SendStream's framing.
func TestMessageWriterRoundTrip(t *testing.T) {
	const max = 1 << 20
	sizes := []int{0, 1, 100, 4091, 4092, 4093, 4096, 64 << 10, max}
	var buf bytes.Buffer
	w := stream.NewMessageWriter(&buf, max)
	var want [][]byte
	for _, n := range sizes {
		if err := w.WriteMessage(pattern(n)); err != nil {
			t.Fatalf("WriteMessage(%d bytes): %v", n, err)
		}
		want = append(want, pattern(n))
	}
	if !bytes.Equal(buf.Bytes(), frame(want...)) {
		t.Fatal("the bytes written are not the message framing")
	}
	r := stream.NewMessageReader(&buf, max)
	for _, n := range sizes {
		msg, err := r.ReadMessage()
		if err != nil || !bytes.Equal(msg, pattern(n)) {
			t.Fatalf("ReadMessage (want %d bytes) = %d bytes, %v", n, len(msg), err)
		}
	}
	if _, err := r.ReadMessage(); err != io.EOF {
		t.Errorf("ReadMessage at the end: %v, want io.EOF", err)
	}
}

// countingWriter records the size of each Write.
type countingWriter struct{ writes []int }

func (c *countingWriter) Write(p []byte) (int, error) {
	c.writes = append(c.writes, len(p))
	return len(p), nil
}

// TestMessageWriterWrites: a small message is one Write, prefix included;
// a large one is the prefix, then the caller's slice itself (no copy).
func TestMessageWriterWrites(t *testing.T) {
	tests := []struct {
		size   int
		writes []int
	}{
		{0, []int{4}},
		{4092, []int{4096}},
		{4093, []int{4, 4093}},
		{1 << 20, []int{4, 1 << 20}},
	}
	for _, tt := range tests {
		cw := &countingWriter{}
		if err := stream.NewMessageWriter(cw, 0).WriteMessage(make([]byte, tt.size)); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(cw.writes, tt.writes) {
			t.Errorf("%d-byte message: writes of %v bytes, want %v", tt.size, cw.writes, tt.writes)
		}
	}
}

// TestMessageWriterAllocations: writing a message allocates nothing, small
// or large.
func TestMessageWriterAllocations(t *testing.T) {
	w := stream.NewMessageWriter(io.Discard, 0)
	for _, n := range []int{10, 4092, 100_000} {
		msg := pattern(n)
		if err := w.WriteMessage(msg); err != nil { // fill the pool
			t.Fatal(err)
		}
		if allocs := testing.AllocsPerRun(100, func() { _ = w.WriteMessage(msg) }); allocs != 0 {
			t.Errorf("%d-byte message: %v allocations, want 0", n, allocs)
		}
	}
}

func TestMessageWriterTooLarge(t *testing.T) {
	tests := []struct {
		name    string
		maxSize int
		size    int
		wantMax int
	}{
		{"over the bound", 100, 101, 100},
		{"0 means the default", 0, stream.DefaultMaxMessageSize + 1, stream.DefaultMaxMessageSize},
		{"negative means the default", -1, stream.DefaultMaxMessageSize + 1, stream.DefaultMaxMessageSize},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			w := stream.NewMessageWriter(&buf, tt.maxSize)
			err := w.WriteMessage(make([]byte, tt.size))
			var tooLarge *qerr.MessageTooLargeError
			if !errors.As(err, &tooLarge) || tooLarge.Size != uint64(tt.size) || tooLarge.Max != tt.wantMax {
				t.Fatalf("WriteMessage: %v, want MessageTooLargeError{%d, %d}", err, tt.size, tt.wantMax)
			}
			wantOp(t, err, "write message")
			if buf.Len() != 0 {
				t.Errorf("%d bytes written for a refused message", buf.Len())
			}
			// Refusing a message leaves the writer usable.
			if err := w.WriteMessage([]byte("ok")); err != nil || !bytes.Equal(buf.Bytes(), frame([]byte("ok"))) {
				t.Errorf("after a refused message: %v, wrote %q", err, buf.Bytes())
			}
		})
	}
}

// failingWriter takes the first take bytes, then fails every Write with
// err; with err nil it reports short writes without an error.
type failingWriter struct {
	take int
	err  error
	got  []byte
}

func (f *failingWriter) Write(p []byte) (int, error) {
	n := min(len(p), f.take-len(f.got))
	f.got = append(f.got, p[:n]...)
	if n < len(p) {
		return n, f.err
	}
	return n, nil
}

// TestMessageWriterErrors: w's failure is wrapped with the operation; one
// after part of a message was taken leaves the writer out of step (later
// calls fail with ErrClosed), one before any byte does not.
func TestMessageWriterErrors(t *testing.T) {
	errBoom := errors.New("boom")
	tests := []struct {
		name      string
		w         *failingWriter
		msg       []byte
		want      error
		stuck     bool // later calls fail with ErrClosed
		laterTake int  // else: bytes the writer then takes
	}{
		{"small message, nothing taken", &failingWriter{take: 0, err: errBoom}, []byte("hi"), errBoom, false, 0},
		{"small message, part taken", &failingWriter{take: 3, err: errBoom}, []byte("hi"), errBoom, true, 0},
		{"large message, prefix refused", &failingWriter{take: 0, err: errBoom}, make([]byte, 5000), errBoom, false, 0},
		{"large message, prefix taken", &failingWriter{take: 4, err: errBoom}, make([]byte, 5000), errBoom, true, 0},
		{"short write without an error", &failingWriter{take: 2}, []byte("hi"), io.ErrShortWrite, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := stream.NewMessageWriter(tt.w, 0)
			err := w.WriteMessage(tt.msg)
			if !errors.Is(err, tt.want) {
				t.Fatalf("WriteMessage: %v, want %v", err, tt.want)
			}
			wantOp(t, err, "write message")
			tt.w.take += 1 << 20 // the writer recovers
			err = w.WriteMessage([]byte("next"))
			switch {
			case tt.stuck && !errors.Is(err, qerr.ErrClosed):
				t.Errorf("after a failure mid-message: %v, want ErrClosed", err)
			case !tt.stuck && err != nil:
				t.Errorf("after a failure before any byte: %v, want nil", err)
			case !tt.stuck && !bytes.Equal(tt.w.got, frame([]byte("next"))):
				t.Errorf("wrote %q, want only the next message", tt.w.got)
			}
		})
	}
}

// TestMessageWriterRequestResponse answers requests on the bidirectional
// QUIC stream they came on: MessageReader and MessageWriter on a Stream,
// each side from several goroutines' worth of messages. Errors from the
// Stream keep its own operation name.
func TestMessageWriterRequestResponse(t *testing.T) {
	c, s := newConnPair(t, nil)
	cq, sq := openBidi(t, c, s)
	client, server := stream.NewStream(cq), stream.NewStream(sq)

	done := make(chan error, 1)
	go func() {
		r, w := stream.NewMessageReader(server, 0), stream.NewMessageWriter(server, 0)
		for {
			req, err := r.ReadMessage()
			if err == io.EOF {
				done <- server.Close()
				return
			}
			if err != nil {
				done <- err
				return
			}
			if err := w.WriteMessage(append([]byte("re: "), req...)); err != nil {
				done <- err
				return
			}
		}
	}()

	const senders, each = 4, 25
	w := stream.NewMessageWriter(client, 0)
	var wg sync.WaitGroup
	for g := range senders {
		wg.Go(func() {
			for i := range each {
				if err := w.WriteMessage(pattern((i*senders + g) * 97)); err != nil { // a distinct size per request
					t.Errorf("WriteMessage: %v", err)
					return
				}
			}
		})
	}
	got := map[int]int{}
	r := stream.NewMessageReader(client, 0)
	for range senders * each {
		msg, err := r.ReadMessage()
		if err != nil {
			t.Fatalf("ReadMessage: %v", err)
		}
		body, ok := bytes.CutPrefix(msg, []byte("re: "))
		if !ok || !bytes.Equal(body, pattern(len(body))) {
			t.Fatalf("reply of %d bytes is not a reply to a whole request", len(msg))
		}
		got[len(body)]++
	}
	wg.Wait()
	if len(got) != senders*each {
		t.Errorf("%d distinct replies, want %d", len(got), senders*each)
	}
	if err := client.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("server: %v", err)
	}
	if _, err := r.ReadMessage(); err != io.EOF {
		t.Errorf("after the server closed: %v, want io.EOF", err)
	}
	err := w.WriteMessage([]byte("late"))
	if !errors.Is(err, qerr.ErrFinished) {
		t.Fatalf("WriteMessage after Close: %v, want ErrFinished", err)
	}
	wantOp(t, err, "write")
}
