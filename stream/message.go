package stream

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sync"

	"github.com/quic-go/quic-go"

	qerr "github.com/quicconn/quicconn/errors"
	"github.com/quicconn/quicconn/internal/gate"
)

// DefaultMaxMessageSize is the message size bound used when a constructor is
// given a bound of 0 or less: 16 MiB.
const DefaultMaxMessageSize = 16 << 20

// headerSize is the length prefix of a message: a big-endian uint32.
const headerSize = 4

// messageBound normalizes a message size bound: <= 0 means the default,
// and no bound needs to exceed what the prefix can express.
func messageBound(n int) int {
	if n <= 0 {
		return DefaultMaxMessageSize
	}
	if uint64(n) > math.MaxUint32 {
		return math.MaxUint32
	}
	return n
}

// coalesceSize bounds the messages Send writes with one quic-go Write, prefix
// and body copied into a pooled buffer, so that a small message never sends
// its prefix in a packet of its own. Larger messages are written in two
// calls, with no copy.
const coalesceSize = 4 << 10

var coalescePool = sync.Pool{New: func() any {
	b := make([]byte, 0, coalesceSize)
	return &b
}}

// SendStream is an outbound unidirectional stream that carries messages:
// each Send writes a 4-byte big-endian length and then the message, the
// framing of the msquic-based Rust Connection API (see the package documentation), which a
// [MessageReader] on the peer's stream reads back.
//
// Send may be called from several goroutines: it sends one message at a
// time, whole. Close and CancelWrite may be called from any goroutine.
type SendStream struct {
	w   WriteStream
	max int

	// sending is held by Send, so that a prefix and its body are adjacent;
	// its condition is always set: every holder may proceed. It is made by
	// the first Send or Close (once), so that opening a stream costs one
	// allocation.
	sending     gate.Gate
	sendingOnce sync.Once
	hdr         [headerSize]byte
	broken      error // set while holding sending, when a Send stopped mid-message
}

// NewSendStream wraps an outbound unidirectional quic-go stream, such as one
// from quic-go's Conn.OpenUniStreamSync, as a message stream that refuses
// messages longer than maxMessageSize bytes ([DefaultMaxMessageSize] when
// maxMessageSize <= 0). The conn package uses it for OpenSendStream; it is
// exported for programs that hold raw quic-go streams too. The SendStream
// takes over s: use s only through it.
func NewSendStream(s *quic.SendStream, maxMessageSize int) *SendStream {
	return &SendStream{
		w:   WriteStream{ws: s, id: int64(s.StreamID())},
		max: messageBound(maxMessageSize),
	}
}

// ID returns the QUIC stream ID.
func (s *SendStream) ID() int64 { return s.w.id }

// Send writes msg as one message and returns once quic-go has taken all of
// it. A message longer than the stream's bound fails with a
// *errors.MessageTooLargeError before anything is written. Send blocks while
// the peer's flow control allows no more data, until ctx ends; waiting for
// another goroutine's Send to finish does not watch ctx.
//
// Errors, in an *errors.OpError with Op "send message": ctx.Err() when ctx
// ended; ErrFinished after Close; a *errors.StreamError with Kind Stopped
// after the peer's STOP_SENDING or CancelWrite; a *errors.ConnectionError
// once the connection is gone.
//
// When ctx ends after part of the message was taken, the stream is left
// mid-message: later Sends fail with an error matching ErrClosed, and the
// peer's MessageReader reports io.ErrUnexpectedEOF after Close; call
// CancelWrite to abort the stream instead.
func (s *SendStream) Send(ctx context.Context, msg []byte) error {
	if len(msg) > s.max {
		return qerr.Op("send message", &qerr.MessageTooLargeError{Size: uint64(len(msg)), Max: s.max})
	}
	if err := ctx.Err(); err != nil {
		return qerr.Op("send message", err)
	}
	s.sendingOnce.Do(s.initSending)
	if _, err := s.sending.WaitAndLock(ctx); err != nil {
		return qerr.Op("send message", err)
	}
	defer s.sending.Unlock(true)
	if s.broken != nil {
		return s.broken
	}
	var (
		n     int
		err   error
		fired bool
	)
	if ctx.Done() == nil {
		n, err = s.writeMessage(msg)
	} else {
		stop := s.w.dl.arm(ctx, &s.w)
		n, err = s.writeMessage(msg)
		fired = s.w.dl.disarm(stop, &s.w)
	}
	if err == nil {
		return nil
	}
	if fired && errors.Is(err, os.ErrDeadlineExceeded) {
		err = ctx.Err()
		if n > 0 {
			s.broken = qerr.Op("send message", errBroken)
		}
	} else {
		err = s.w.mapErr(err)
	}
	return qerr.Op("send message", err)
}

func (s *SendStream) initSending() { s.sending = gate.New(true) }

// errBroken reports a SendStream left mid-message by an interrupted Send.
var errBroken = fmt.Errorf("%w: an earlier Send was interrupted mid-message", qerr.ErrClosed)

// writeMessage writes the prefix and msg and returns how many bytes of both
// quic-go took, with quic-go's own error.
func (s *SendStream) writeMessage(msg []byte) (int, error) {
	binary.BigEndian.PutUint32(s.hdr[:], uint32(len(msg)))
	if len(msg) <= coalesceSize-headerSize {
		bp := coalescePool.Get().(*[]byte)
		b := append(append((*bp)[:0], s.hdr[:]...), msg...)
		n, err := s.w.write(b)
		if err == nil {
			// quic-go keeps no reference to b once Write succeeded. After a
			// failure it may, so the buffer is left to the collector.
			*bp = b[:0]
			coalescePool.Put(bp)
		}
		return n, err
	}
	n, err := s.w.write(s.hdr[:])
	if err != nil {
		return n, err
	}
	m, err := s.w.write(msg)
	return n + m, err
}

// Close finishes the stream after the messages sent so far: the peer's
// MessageReader returns io.EOF after the last one. Errors are those of
// [WriteStream.Close]. Close waits for a Send in progress to finish.
func (s *SendStream) Close() error {
	s.sendingOnce.Do(s.initSending)
	s.sending.Lock()
	defer s.sending.Unlock(true)
	return s.w.Close()
}

// CancelWrite aborts the stream with RESET_STREAM and the application error
// code, as [WriteStream.CancelWrite] does; a Send in progress returns at once.
func (s *SendStream) CancelWrite(code uint64) error { return s.w.CancelWrite(code) }

// SetPriority sets the stream's send priority; see [WriteStream.SetPriority].
func (s *SendStream) SetPriority(urgency int8, incremental bool) {
	s.w.SetPriority(urgency, incremental)
}

// maxNoProgress bounds the empty reads MessageReader tolerates in a row from
// a reader that returns neither data nor an error, as bufio does.
const maxNoProgress = 100

// firstBodyCap bounds the buffer a message starts with: the buffer grows as
// the body arrives, so a peer that announces a large message and sends
// little makes the reader allocate little.
const firstBodyCap = 64 << 10

// MessageReader reads the messages a [SendStream] (or any peer using the
// same framing) sends, from r: usually a [ReadStream] or a [Stream].
//
// Its state survives failed calls: after an error of r such as a passed
// read deadline, the next ReadMessage carries on with the same message. After
// a message that exceeds the bound or a truncated one, the stream is out of
// step, and every later call returns the same error.
//
// A MessageReader is for one goroutine at a time.
type MessageReader struct {
	r   io.Reader
	max int

	hdr  [headerSize]byte
	hn   int    // bytes of hdr read for the current message
	body []byte // the current message so far; nil until its prefix is read
	size int    // the current message's length, once body is not nil
	err  error  // sticky: the stream is out of step
}

// NewMessageReader returns a MessageReader over r that refuses messages
// longer than maxSize bytes ([DefaultMaxMessageSize] when maxSize <= 0).
func NewMessageReader(r io.Reader, maxSize int) *MessageReader {
	return &MessageReader{r: r, max: messageBound(maxSize)}
}

// ReadMessage returns the next message, in a new slice the caller owns; a
// zero-length message is an empty, non-nil slice. At a clean end of the
// stream, between messages, it returns io.EOF (bare).
//
// Errors, in an *errors.OpError with Op "read message" unless r's error
// already names its operation (a Stream's errors say "read"): a
// *errors.MessageTooLargeError when a length prefix exceeds the bound,
// returned before any buffer for that message is allocated;
// io.ErrUnexpectedEOF when the stream ends inside a prefix or a body; r's
// errors otherwise.
func (m *MessageReader) ReadMessage() ([]byte, error) {
	if m.err != nil {
		return nil, m.err
	}
	if m.body == nil {
		if err := m.readHeader(); err != nil {
			return nil, err
		}
		size := binary.BigEndian.Uint32(m.hdr[:])
		if uint64(size) > uint64(m.max) {
			return nil, m.fail(&qerr.MessageTooLargeError{Size: uint64(size), Max: m.max})
		}
		m.size = int(size)
		m.body = make([]byte, 0, min(m.size, firstBodyCap))
	}
	if err := m.readBody(); err != nil {
		return nil, err
	}
	msg := m.body
	m.hn, m.body, m.size = 0, nil, 0
	return msg, nil
}

// readHeader fills m.hdr.
func (m *MessageReader) readHeader() error {
	for empty := 0; m.hn < headerSize; {
		n, err := m.r.Read(m.hdr[m.hn:])
		if n < 0 || n > headerSize-m.hn {
			return m.fail(errBadCount)
		}
		m.hn += n
		if m.hn == headerSize {
			// An error that came with the last byte comes back on the
			// next Read, if it matters.
			return nil
		}
		switch {
		case err == io.EOF && m.hn == 0:
			return io.EOF
		case err == io.EOF:
			return m.fail(io.ErrUnexpectedEOF)
		case err != nil:
			return qerr.Op("read message", err)
		case n == 0:
			if empty++; empty == maxNoProgress {
				return qerr.Op("read message", io.ErrNoProgress)
			}
		default:
			empty = 0
		}
	}
	return nil
}

// readBody reads until m.body holds m.size bytes, growing it as data comes.
func (m *MessageReader) readBody() error {
	for empty := 0; len(m.body) < m.size; {
		if len(m.body) == cap(m.body) {
			grown := make([]byte, len(m.body), min(m.size, 2*cap(m.body)))
			copy(grown, m.body)
			m.body = grown
		}
		free := m.body[len(m.body):cap(m.body)]
		n, err := m.r.Read(free)
		if n < 0 || n > len(free) {
			return m.fail(errBadCount)
		}
		m.body = m.body[:len(m.body)+n]
		if len(m.body) == m.size {
			return nil
		}
		switch {
		case err == io.EOF:
			return m.fail(io.ErrUnexpectedEOF)
		case err != nil:
			return qerr.Op("read message", err)
		case n == 0:
			if empty++; empty == maxNoProgress {
				return qerr.Op("read message", io.ErrNoProgress)
			}
		default:
			empty = 0
		}
	}
	return nil
}

// errBadCount reports a reader that broke the io.Reader contract.
var errBadCount = qerr.Internal(errors.New("reader returned an invalid byte count"))

// fail records err, which leaves the stream out of step, for every later
// call, and returns it.
func (m *MessageReader) fail(err error) error {
	m.err = qerr.Op("read message", err)
	m.body = nil
	return m.err
}

// MessageWriter writes messages in the framing of [SendStream] — a 4-byte
// big-endian length, then the bytes — to any io.Writer: usually the write
// side of a bidirectional [Stream], so that a request read with a
// [MessageReader] is answered on the same stream, or a [WriteStream]. A
// [MessageReader] on the peer's side reads the messages back.
//
// WriteMessage may be called from several goroutines: it writes one message
// at a time, whole. A message of up to 4 KiB minus its prefix is copied
// with its prefix into a pooled buffer and written with one Write, so that
// it never sends its prefix in a packet of its own; a larger one is written
// with two, prefix then msg, with no copy. Neither allocates.
type MessageWriter struct {
	w   io.Writer
	max int

	mu  sync.Mutex // held by WriteMessage: a prefix and its body must be adjacent
	hdr [headerSize]byte
	err error // sticky, set under mu: a write stopped mid-message
}

// NewMessageWriter returns a MessageWriter over w that refuses messages
// longer than maxSize bytes ([DefaultMaxMessageSize] when maxSize <= 0, and
// never more than the prefix can express, 2^32-1).
func NewMessageWriter(w io.Writer, maxSize int) *MessageWriter {
	return &MessageWriter{w: w, max: messageBound(maxSize)}
}

// WriteMessage writes msg as one message and returns once w has taken all
// of it. A message longer than the bound fails with a
// *errors.MessageTooLargeError before anything is written.
//
// Errors, in an *errors.OpError with Op "write message" unless w's error
// already names its operation (a Stream's errors say "write"): the
// MessageTooLargeError; w's errors otherwise, such as ErrFinished after the
// stream was closed or an error matching os.ErrDeadlineExceeded. When w
// failed after taking part of a message, the stream is out of step: that
// call returns w's error and every later one an error matching ErrClosed;
// abort the stream (CancelWrite) rather than Close it, since the peer would
// read a truncated message. A failure before any byte was taken leaves the
// writer usable.
func (m *MessageWriter) WriteMessage(msg []byte) error {
	const op = "write message"
	if len(msg) > m.max {
		return qerr.Op(op, &qerr.MessageTooLargeError{Size: uint64(len(msg)), Max: m.max})
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return m.err
	}
	n, err := m.writeMessage(msg)
	if err == nil {
		return nil
	}
	if n > 0 {
		m.err = qerr.Op(op, errWriterBroken)
	}
	return qerr.Op(op, err)
}

// errWriterBroken reports a MessageWriter left mid-message by a failed
// write.
var errWriterBroken = fmt.Errorf("%w: an earlier WriteMessage stopped mid-message", qerr.ErrClosed)

// writeMessage writes the prefix and msg and returns how many bytes of both
// w took. A short write without an error, which breaks io.Writer's
// contract, is io.ErrShortWrite.
func (m *MessageWriter) writeMessage(msg []byte) (int, error) {
	binary.BigEndian.PutUint32(m.hdr[:], uint32(len(msg)))
	if len(msg) <= coalesceSize-headerSize {
		bp := coalescePool.Get().(*[]byte)
		b := append(append((*bp)[:0], m.hdr[:]...), msg...)
		n, err := m.w.Write(b)
		if err == nil {
			// Writers keep no reference to b once Write returned (quic-go's
			// streams may after a failure, so then it is left to the
			// collector).
			*bp = b[:0]
			coalescePool.Put(bp)
		}
		return n, shortWrite(n, len(b), err)
	}
	n, err := m.w.Write(m.hdr[:])
	if err = shortWrite(n, headerSize, err); err != nil {
		return n, err
	}
	k, err := m.w.Write(msg)
	return n + k, shortWrite(k, len(msg), err)
}

// shortWrite returns err, or io.ErrShortWrite when a Write took fewer than
// want bytes without saying why.
func shortWrite(n, want int, err error) error {
	if err == nil && n < want {
		return io.ErrShortWrite
	}
	return err
}
