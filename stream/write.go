package stream

import (
	"context"
	"errors"
	"time"

	"github.com/quic-go/quic-go"

	qerr "github.com/quicconn/quicconn/errors"
	"github.com/quicconn/quicconn/internal/quicerr"
)

// WriteStream is the sending direction of a QUIC stream: the write half of a
// bidirectional [Stream] (from [Stream.Split]). An outbound unidirectional
// stream is a [Stream] (from [NewSendOnlyStream]) or, for messages, a
// [SendStream].
//
// One goroutine may write (Write, WriteChunks, and Close, which must not run
// concurrently with a Write) at a time; CancelWrite and SetWriteDeadline may
// be called from any goroutine. The zero value has no stream beneath it (its
// writes fail with ErrClosed): get a WriteStream from Split.
type WriteStream struct {
	ws sender // nil only in the zero value
	id int64
	lt quicerr.Lifetime // the connection, when package conn made the stream
	dl interrupter
}

// sender is the sending direction of a quic-go stream: *quic.Stream and
// *quic.SendStream both provide it.
type sender interface {
	Write(p []byte) (int, error)
	Close() error
	CancelWrite(code quic.StreamErrorCode)
	SetWriteDeadline(t time.Time) error
	SetPriority(urgency int8, incremental bool)
	Context() context.Context
}

// ID returns the QUIC stream ID.
func (w *WriteStream) ID() int64 { return w.id }

// Write writes p to the stream and returns once quic-go has taken all of it
// (quic-go copies p; Write does not), or fails. It blocks while the peer's
// flow control allows no more data, until the write deadline passes.
//
// Errors, each in an *errors.OpError with Op "write": ErrFinished after
// Close; a *errors.StreamError with Kind Stopped (Remote when the peer sent
// STOP_SENDING, local after CancelWrite); a *errors.ConnectionError,
// matching ErrConnectionLost, once the connection is gone; an error matching
// os.ErrDeadlineExceeded when the write deadline passed. On error, n says how
// much of p was taken.
func (w *WriteStream) Write(p []byte) (int, error) {
	n, err := w.write(p)
	if err != nil {
		err = w.writeError(err)
	}
	return n, err
}

// writeError is Write's error for quic-go's err.
//
//go:noinline
func (w *WriteStream) writeError(err error) error { return qerr.Op("write", w.mapErr(err)) }

// write is Write with quic-go's own error.
func (w *WriteStream) write(p []byte) (int, error) {
	if w.ws == nil {
		return 0, errNoWriteSide
	}
	return w.ws.Write(p)
}

// errNoWriteSide marks a WriteStream that has no stream (its zero value).
var errNoWriteSide = errors.New("no write side")

// mapErr maps an error of write to the taxonomy; a lost connection is
// reported as its connection reports it.
func (w *WriteStream) mapErr(err error) error {
	if err == errNoWriteSide {
		return qerr.ErrClosed
	}
	return quicerr.Write(err, w.lt)
}

// WriteChunks writes the chunks in order, as Write would their
// concatenation, and if fin is set closes the write side after the last one,
// as Close does. It returns the number of bytes written; errors are those of
// Write and Close.
func (w *WriteStream) WriteChunks(chunks [][]byte, fin bool) (int, error) {
	total := 0
	for _, c := range chunks {
		if len(c) == 0 {
			continue
		}
		n, err := w.Write(c)
		total += n
		if err != nil {
			return total, err
		}
	}
	if fin {
		return total, w.Close()
	}
	return total, nil
}

// Close finishes the write side: it sends FIN after the data written so far,
// and the peer reads io.EOF after that data. It is msquic's finish_write,
// and does not touch the read side of a bidirectional stream. Later Writes
// fail with ErrFinished; calling Close again returns nil.
//
// Errors, in an *errors.OpError with Op "close": a *errors.StreamError with
// Kind Stopped when the write side was already aborted (CancelWrite, or the
// peer's STOP_SENDING); a *errors.ConnectionError when the connection was
// gone before Close.
func (w *WriteStream) Close() error {
	if w.ws == nil {
		return w.closed(errNoWriteSide)
	}
	return w.closed(w.ws.Close())
}

// closed is Close's result for quic-go's err, out of line for the reason
// given in Stream.Read.
//
//go:noinline
func (w *WriteStream) closed(err error) error {
	if err == errNoWriteSide {
		return qerr.Op("close", qerr.ErrClosed)
	}
	// quic-go's Close returns nil on a closed connection, and an unwrapped
	// fmt error after a cancellation; the send context's cause says which.
	cause := context.Cause(w.ws.Context())
	if err == nil {
		if cause != nil && quicerr.IsConnectionError(cause) {
			return qerr.Op("close", w.mapErr(cause))
		}
		return nil
	}
	if se, ok := errors.AsType[*quic.StreamError](cause); ok {
		return qerr.Op("close", w.mapErr(se))
	}
	return qerr.Op("close", w.mapErr(err))
}

// CancelWrite aborts sending: it sends RESET_STREAM with the application
// error code, so the peer's reads fail with a *errors.StreamError{Kind:
// Reset, Remote: true, Code: code}; data not yet delivered may be lost. A
// blocked Write returns at once, and later Writes fail with a
// *errors.StreamError{Kind: Stopped, Remote: false}. It is msquic's
// abort_write. After Close it still aborts delivery of unacknowledged data.
// Calling it again does nothing. It returns nil but for a code above
// 2^62-1, the largest QUIC can carry, which it rejects with an error
// matching ErrInvalidCode.
func (w *WriteStream) CancelWrite(code uint64) error {
	if err := quicerr.CheckCode(code); err != nil {
		return qerr.Op("cancel write", err)
	}
	if w.ws != nil {
		w.ws.CancelWrite(quic.StreamErrorCode(code))
	}
	return nil
}

// SetWriteDeadline sets the deadline for future and currently blocked Write
// calls; a zero t means no deadline. A Write that times out returns an error
// matching os.ErrDeadlineExceeded and may have written part of its data. It
// always returns nil.
func (w *WriteStream) SetWriteDeadline(t time.Time) error {
	w.dl.setDeadline(t, w)
	return nil
}

// applyDeadline implements deadliner.
func (w *WriteStream) applyDeadline(t time.Time) {
	if w.ws != nil {
		_ = w.ws.SetWriteDeadline(t) // never fails
	}
}

// SetPriority sets the stream's send priority with quic-go's scheme (the
// semantics of RFC 9218): a lower urgency (0 to 7; 3 by default) is sent
// first; among streams of the same urgency, incremental ones share the
// bandwidth round-robin and non-incremental ones are sent one after the
// other, in the order they were opened. It only orders this side's sending
// and can be changed at any time.
func (w *WriteStream) SetPriority(urgency int8, incremental bool) {
	if w.ws != nil {
		w.ws.SetPriority(urgency, incremental)
	}
}
