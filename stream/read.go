package stream

import (
	"context"
	"errors"
	"io"
	"os"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	qerr "github.com/quicconn/quicconn/errors"
	"github.com/quicconn/quicconn/internal/quicerr"
)

// MaxChunkSize is the most bytes one ReadChunk returns.
const MaxChunkSize = 16 << 10

// chunkPool holds MaxChunkSize scratch buffers that ReadChunk reads into
// before copying out exactly what arrived, so a small chunk does not pin a
// large buffer.
var chunkPool = sync.Pool{New: func() any {
	b := make([]byte, MaxChunkSize)
	return &b
}}

// ReadStream is the receiving direction of a QUIC stream: the read half of a
// bidirectional [Stream] (from [Stream.Split]), or an inbound unidirectional
// stream (from [NewReadStream]).
//
// One goroutine may read (Read or ReadChunk) at a time; CancelRead and
// SetReadDeadline may be called from any goroutine. The zero value has no
// stream beneath it (its reads fail with ErrClosed): get a ReadStream from
// NewReadStream or from Split.
type ReadStream struct {
	rs receiver // nil for the absent read side of an outbound unidirectional stream
	id int64
	lt quicerr.Lifetime // the connection, when package conn made the stream
	dl interrupter
}

// receiver is the receiving direction of a quic-go stream: *quic.Stream and
// *quic.ReceiveStream both provide it.
type receiver interface {
	Read(p []byte) (int, error)
	CancelRead(code quic.StreamErrorCode)
	SetReadDeadline(t time.Time) error
}

// NewReadStream wraps an inbound unidirectional quic-go stream, such as one
// from quic-go's Conn.AcceptUniStream. The conn package uses it for
// AcceptInboundUniStream; it is exported for programs that hold raw quic-go
// streams too. The ReadStream takes over s: use s only through it.
func NewReadStream(s *quic.ReceiveStream) *ReadStream {
	return &ReadStream{rs: s, id: int64(s.StreamID())}
}

// ID returns the QUIC stream ID.
func (r *ReadStream) ID() int64 { return r.id }

// Read reads up to len(p) bytes into p, straight from quic-go's receive
// buffer, and returns io.EOF (bare) once the peer's FIN was read. It blocks
// until some data is available, the read deadline passes or the stream fails.
//
// Errors, each in an *errors.OpError with Op "read": a *errors.StreamError
// with Kind Reset (Remote when the peer sent RESET_STREAM, local after
// CancelRead); a *errors.ConnectionError, matching ErrConnectionLost, once the
// connection is gone; an error matching os.ErrDeadlineExceeded when the read
// deadline passed; ErrClosed for the read side of an outbound unidirectional
// stream.
func (r *ReadStream) Read(p []byte) (int, error) {
	n, err := r.read(p)
	if err != nil && err != io.EOF {
		err = r.readError(err)
	}
	return n, err
}

// readError is Read's error for quic-go's err.
//
//go:noinline
func (r *ReadStream) readError(err error) error { return qerr.Op("read", r.mapErr(err)) }

// read is Read with quic-go's own error.
func (r *ReadStream) read(p []byte) (int, error) {
	if r.rs == nil {
		return 0, errNoReadSide
	}
	return r.rs.Read(p)
}

// errNoReadSide marks the absent read side of an outbound unidirectional
// stream; read returns it and mapRead turns it into ErrClosed.
var errNoReadSide = errors.New("no read side")

// ReadChunk returns the next bytes received on the stream: a freshly
// allocated slice of what is available, at most [MaxChunkSize] bytes and never
// empty, or io.EOF (bare) after the peer's FIN. It blocks until data arrives,
// the stream fails, the read deadline passes or ctx ends. Unlike Read it
// copies, once, so that the caller owns the slice.
//
// When ctx ends first, ReadChunk returns an *errors.OpError with Op "read"
// wrapping ctx.Err(). To stop quic-go's blocking Read it moves the stream's
// read deadline into the past, and puts back the deadline set with
// SetReadDeadline before it returns; a SetReadDeadline call made meanwhile is
// kept and applied then. Other errors are those of [ReadStream.Read].
func (r *ReadStream) ReadChunk(ctx context.Context) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, qerr.Op("read", err)
	}
	bp := chunkPool.Get().(*[]byte)
	defer chunkPool.Put(bp)
	var (
		n     int
		err   error
		fired bool
	)
	if ctx.Done() == nil {
		n, err = r.readSome(*bp)
	} else {
		stop := r.dl.arm(ctx, r)
		n, err = r.readSome(*bp)
		fired = r.dl.disarm(stop, r)
	}
	if n > 0 {
		// An error that came with the data comes back on the next call:
		// quic-go keeps returning EOF, reset, deadline and connection errors.
		chunk := make([]byte, n)
		copy(chunk, *bp)
		return chunk, nil
	}
	switch {
	case err == io.EOF:
		return nil, io.EOF
	case fired && errors.Is(err, os.ErrDeadlineExceeded):
		return nil, qerr.Op("read", ctx.Err())
	}
	return nil, qerr.Op("read", r.mapErr(err))
}

// readSome reads until it gets data or an error.
func (r *ReadStream) readSome(p []byte) (n int, err error) {
	for n == 0 && err == nil {
		n, err = r.read(p)
	}
	return n, err
}

// mapErr maps an error of read to the taxonomy; a lost connection is
// reported as its connection reports it.
func (r *ReadStream) mapErr(err error) error {
	if err == errNoReadSide {
		return qerr.ErrClosed
	}
	return quicerr.Read(err, r.lt)
}

// CancelRead aborts receiving: it sends STOP_SENDING with the application
// error code, asking the peer to stop; a blocked Read returns at once, and
// Reads fail with a *errors.StreamError{Kind: Reset, Remote: false, Code:
// code}. It is msquic's abort_read. Calling it again, or after Read
// returned io.EOF, does nothing. It returns nil but for a code above
// 2^62-1, the largest QUIC can carry, which it rejects with an error
// matching ErrInvalidCode.
func (r *ReadStream) CancelRead(code uint64) error {
	if err := quicerr.CheckCode(code); err != nil {
		return qerr.Op("cancel read", err)
	}
	if r.rs != nil {
		r.rs.CancelRead(quic.StreamErrorCode(code))
	}
	return nil
}

// SetReadDeadline sets the deadline for future and currently blocked Read and
// ReadChunk calls; a zero t means no deadline. A Read that times out returns
// an error matching os.ErrDeadlineExceeded (a net.Error whose Timeout is
// true). It always returns nil.
func (r *ReadStream) SetReadDeadline(t time.Time) error {
	r.dl.setDeadline(t, r)
	return nil
}

// applyDeadline implements deadliner.
func (r *ReadStream) applyDeadline(t time.Time) {
	if r.rs != nil {
		_ = r.rs.SetReadDeadline(t) // never fails
	}
}
