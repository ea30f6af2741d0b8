package stream

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/quicconn/quicconn/internal/quicerr"
)

// Stream is a QUIC stream opened by either peer: an io.ReadWriteCloser whose
// Close finishes the write side only (the peer reads io.EOF) and whose
// CancelRead and CancelWrite abort one direction with an application error
// code.
//
// A bidirectional Stream reads and writes. An outbound unidirectional Stream
// (from [NewSendOnlyStream]) only writes: Read and ReadChunk fail with an
// error matching errors.ErrClosed, and CancelRead and SetReadDeadline do
// nothing.
//
// Concurrency follows quic-go: one goroutine may read and another write at
// the same time; CancelRead, CancelWrite and the deadline setters may be
// called from any goroutine; Close must not run concurrently with a Write.
// [Stream.Split] hands the two directions to their goroutines.
//
// A Stream is one allocation: it holds its two halves by value.
type Stream struct {
	r ReadStream
	w WriteStream
}

// NewStream wraps a bidirectional quic-go stream, such as one from quic-go's
// Conn.OpenStreamSync or Conn.AcceptStream. The conn package uses it for
// every bidirectional stream; it is exported for programs that hold raw
// quic-go streams too. The Stream takes over s: use s only through it.
func NewStream(s *quic.Stream) *Stream {
	id := int64(s.StreamID())
	return &Stream{
		r: ReadStream{rs: s, id: id},
		w: WriteStream{ws: s, id: id},
	}
}

// NewSendOnlyStream wraps an outbound unidirectional quic-go stream, such as
// one from quic-go's Conn.OpenUniStreamSync, as a byte Stream whose read side
// reports errors.ErrClosed. The conn package uses it for OpenOutboundStream
// with [Unidirectional]; for length-prefixed messages use [NewSendStream]
// instead. The Stream takes over s: use s only through it.
func NewSendOnlyStream(s *quic.SendStream) *Stream {
	id := int64(s.StreamID())
	return &Stream{
		r: ReadStream{id: id},
		w: WriteStream{ws: s, id: id},
	}
}

func init() { quicerr.BindStream = bind }

// bind attaches a stream that package conn made to its connection, so that
// its errors for a lost connection are the connection's own.
func bind(s any, lt quicerr.Lifetime) {
	switch s := s.(type) {
	case *Stream:
		s.r.lt, s.w.lt = lt, lt
	case *ReadStream:
		s.lt = lt
	case *SendStream:
		s.w.lt = lt
	default:
		panic(fmt.Sprintf("stream: cannot bind a %T to a connection", s))
	}
}

// ID returns the QUIC stream ID.
func (s *Stream) ID() int64 { return s.w.id }

// Type returns whether the stream is bidirectional or unidirectional.
func (s *Stream) Type() Type { return typeOf(s.w.id) }

// Read reads into p; see [ReadStream.Read].
//
// Read, Write and Close repeat their halves' few lines rather than call
// them: a goroutine per stream, the usual handler, starts with a small
// stack, and a frame more on the way to quic-go made that stack grow, a
// copy per goroutine that cost more than all the rest of the wrapper.
func (s *Stream) Read(p []byte) (int, error) {
	n, err := s.r.read(p)
	if err != nil && err != io.EOF {
		err = s.r.readError(err)
	}
	return n, err
}

// ReadChunk returns the next received bytes; see [ReadStream.ReadChunk].
func (s *Stream) ReadChunk(ctx context.Context) ([]byte, error) { return s.r.ReadChunk(ctx) }

// Write writes p; see [WriteStream.Write] and, for why it does not call
// it, Read.
func (s *Stream) Write(p []byte) (int, error) {
	n, err := s.w.write(p)
	if err != nil {
		err = s.w.writeError(err)
	}
	return n, err
}

// WriteChunks writes chunks in order and, if fin, closes the write side; see
// [WriteStream.WriteChunks].
func (s *Stream) WriteChunks(chunks [][]byte, fin bool) (int, error) {
	return s.w.WriteChunks(chunks, fin)
}

// Close finishes the write side (sends FIN); the read side stays open. See
// [WriteStream.Close].
func (s *Stream) Close() error {
	if s.w.ws == nil {
		return s.w.closed(errNoWriteSide)
	}
	return s.w.closed(s.w.ws.Close())
}

// CancelWrite aborts the write side with RESET_STREAM; see
// [WriteStream.CancelWrite].
func (s *Stream) CancelWrite(code uint64) error { return s.w.CancelWrite(code) }

// CancelRead aborts the read side with STOP_SENDING; see
// [ReadStream.CancelRead]. On an outbound unidirectional stream it does
// nothing.
func (s *Stream) CancelRead(code uint64) error { return s.r.CancelRead(code) }

// SetDeadline sets both the read and the write deadline. It always returns
// nil.
func (s *Stream) SetDeadline(t time.Time) error {
	s.r.dl.setDeadline(t, &s.r)
	s.w.dl.setDeadline(t, &s.w)
	return nil
}

// SetReadDeadline sets the read deadline; see [ReadStream.SetReadDeadline].
func (s *Stream) SetReadDeadline(t time.Time) error { return s.r.SetReadDeadline(t) }

// SetWriteDeadline sets the write deadline; see
// [WriteStream.SetWriteDeadline].
func (s *Stream) SetWriteDeadline(t time.Time) error { return s.w.SetWriteDeadline(t) }

// SetPriority sets the send priority of the write side; see
// [WriteStream.SetPriority].
func (s *Stream) SetPriority(urgency int8, incremental bool) { s.w.SetPriority(urgency, incremental) }

// Split returns the stream's two directions, to be used from two goroutines
// (or handed to code that needs only one). They are views of s, not copies:
// Split allocates nothing, and s and its halves may be used interchangeably.
func (s *Stream) Split() (*ReadStream, *WriteStream) { return &s.r, &s.w }
