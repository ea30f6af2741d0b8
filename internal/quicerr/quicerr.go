// Package quicerr is the one place that turns quic-go's errors into quicconn's
// error taxonomy (package errors, imported as qerr).
//
// The conn package maps the cause of a closed connection with [Connection];
// the stream package maps the errors of quic-go's stream Read and Write with
// [Read] and [Write]. Neither wraps the result in a *qerr.OpError: the caller
// knows the operation and does that itself. Both packages check application error
// codes from users with [CheckCode] before handing them to quic-go.
//
// quic-go reports a closed connection with one of its connection-level error
// types (*quic.ApplicationError, *quic.TransportError, *quic.IdleTimeoutError,
// ...), all of which unwrap to net.ErrClosed, and it returns that same error
// from every stream operation once the connection is gone. Stream-level
// failures have their own values: *quic.StreamError for RESET_STREAM and
// STOP_SENDING (and for local cancellation), quic.ErrStreamClosed for a write
// after Close, and an unexported error matching os.ErrDeadlineExceeded for an
// expired deadline.
package quicerr

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/quicvarint"

	qerr "github.com/quicconn/quicconn/errors"
)

// A Lifetime is a connection's own account of how it ended. Package conn's
// connections provide one, and the streams they hand out ask it, instead of
// mapping quic-go's error on their own, so that a stream operation and
// Connection.Err describe a lost connection with the same value: only the
// connection knows that it closed itself (Registration.Close, the handshake
// budget, revoked trust) or that its peer's certificate was rejected.
type Lifetime interface {
	// ConnectionError returns the connection's error, given the
	// connection-level error that quic-go returned to an operation.
	ConnectionError(cause error) *qerr.ConnectionError
}

// BindStream attaches lt to s, a *stream.Stream, *stream.ReadStream or
// *stream.SendStream just made for lt's connection. Package stream sets it
// when it is initialised; package conn calls it before handing s out.
// (Package stream cannot be named here, which imports it, hence s's type.)
var BindStream func(s any, lt Lifetime)

// connection maps a connection-level error through lt when there is one.
func connection(err error, lt Lifetime) *qerr.ConnectionError {
	if lt != nil {
		return lt.ConnectionError(err)
	}
	return Connection(err)
}

// Connection maps a connection-level error from quic-go — the cause of
// Conn.Context(), or the error of a stream, accept or open call after the
// connection closed — to a *qerr.ConnectionError whose Err is err.
//
//	*quic.ApplicationError, Remote   → ShutdownByPeer{Code, Message, Remote}
//	*quic.ApplicationError, local    → ShutdownByLocal{Code, Message}
//	*quic.TransportError             → ShutdownByTransport{Code, Message, Remote}
//	                                   (TLS alerts are codes 0x100+alert, e.g. 0x12a bad_certificate)
//	*quic.IdleTimeoutError           → IdleTimeout
//	*quic.HandshakeTimeoutError      → HandshakeTimeout
//	*quic.StatelessResetError        → StatelessReset
//	*quic.VersionNegotiationError    → VersionNegotiation
//	anything else                    → ConnectionClosed
//	                                   (quic.ErrTransportClosed, quic.ErrServerClosed, net.ErrClosed, ...)
//
// An err that already is (or wraps) a *qerr.ConnectionError is returned as
// that error, so mapping twice is harmless. Connection returns nil for nil.
func Connection(err error) *qerr.ConnectionError {
	if err == nil {
		return nil
	}
	if ce, ok := errors.AsType[*qerr.ConnectionError](err); ok {
		return ce
	}
	ce := &qerr.ConnectionError{Reason: qerr.ConnectionClosed, Err: err}
	if e, ok := errors.AsType[*quic.ApplicationError](err); ok {
		ce.Reason = qerr.ShutdownByLocal
		if e.Remote {
			ce.Reason = qerr.ShutdownByPeer
		}
		ce.Code = uint64(e.ErrorCode)
		ce.Message = e.ErrorMessage
		ce.Remote = e.Remote
	} else if e, ok := errors.AsType[*quic.TransportError](err); ok {
		ce.Reason = qerr.ShutdownByTransport
		ce.Code = uint64(e.ErrorCode)
		ce.Message = e.ErrorMessage
		ce.Remote = e.Remote
		if ce.Message == "" {
			// A peer's TLS alert arrives as a bare code; name it, e.g.
			// "tls: no application protocol" for 0x178.
			ce.Message = e.ErrorCode.String()
			if m := e.ErrorCode.Message(); m != "" {
				ce.Message += ": " + m
			}
		}
	} else if is[*quic.IdleTimeoutError](err) {
		ce.Reason = qerr.IdleTimeout
	} else if is[*quic.HandshakeTimeoutError](err) {
		ce.Reason = qerr.HandshakeTimeout
	} else if is[*quic.StatelessResetError](err) {
		ce.Reason = qerr.StatelessReset
	} else if is[*quic.VersionNegotiationError](err) {
		ce.Reason = qerr.VersionNegotiation
	}
	return ce
}

// IsConnectionError reports whether err says that the connection is gone:
// one of quic-go's connection-level error types listed on [Connection], a
// *qerr.ConnectionError, or anything matching net.ErrClosed (quic-go's errors
// for a closed Transport or listener). Stream code uses it to tell a failure
// of one stream from a dead connection.
func IsConnectionError(err error) bool {
	if err == nil {
		return false
	}
	return is[*qerr.ConnectionError](err) ||
		is[*quic.ApplicationError](err) ||
		is[*quic.TransportError](err) ||
		is[*quic.IdleTimeoutError](err) ||
		is[*quic.HandshakeTimeoutError](err) ||
		is[*quic.StatelessResetError](err) ||
		is[*quic.VersionNegotiationError](err) ||
		errors.Is(err, net.ErrClosed)
}

// Read maps an error returned by a quic-go stream's Read (or CancelRead's
// effect on it):
//
//	nil                      → nil
//	io.EOF                   → io.EOF, bare (the peer's FIN)
//	os.ErrDeadlineExceeded   → err unchanged (it is a net.Error whose Timeout is true)
//	*quic.StreamError        → *qerr.StreamError{Kind: Reset, Code, Remote}
//	                           (Remote: the peer sent RESET_STREAM; local: CancelRead was called)
//	connection-level error   → *qerr.ConnectionError (lt's, else see [Connection])
//	anything else            → qerr.Internal(err)
//
// lt is the stream's connection, or nil for a stream of raw quic-go.
func Read(err error, lt Lifetime) error {
	return stream(err, qerr.Reset, lt)
}

// Write maps an error returned by a quic-go stream's Write:
//
//	nil                      → nil
//	os.ErrDeadlineExceeded   → err unchanged (it is a net.Error whose Timeout is true)
//	*quic.StreamError        → *qerr.StreamError{Kind: Stopped, Code, Remote}
//	                           (Remote: the peer sent STOP_SENDING; local: CancelWrite was called)
//	quic.ErrStreamClosed     → an error matching qerr.ErrFinished (write after Close)
//	quic.Err0RTTRejected     → an error matching qerr.Err0RTTRejected
//	connection-level error   → *qerr.ConnectionError (lt's, else see [Connection])
//	anything else            → qerr.Internal(err)
//
// In every case but the deadline and a connection error from lt, err stays
// reachable with errors.Is and errors.As. lt is the stream's connection, or
// nil for a stream of raw quic-go.
func Write(err error, lt Lifetime) error {
	return stream(err, qerr.Stopped, lt)
}

func stream(err error, kind qerr.StreamErrorKind, lt Lifetime) error {
	switch {
	case err == nil:
		return nil
	case err == io.EOF:
		return io.EOF
	case errors.Is(err, os.ErrDeadlineExceeded):
		return err
	}
	if e, ok := errors.AsType[*quic.StreamError](err); ok {
		return &qerr.StreamError{Kind: kind, Code: uint64(e.ErrorCode), Remote: e.Remote, Err: err}
	}
	if errors.Is(err, quic.Err0RTTRejected) {
		return Rejected0RTT(err)
	}
	if IsConnectionError(err) {
		return connection(err, lt)
	}
	if kind == qerr.Stopped && errors.Is(err, quic.ErrStreamClosed) {
		return &sentinelError{sentinel: qerr.ErrFinished, err: err}
	}
	return qerr.Internal(err)
}

// Rejected0RTT maps quic-go's quic.Err0RTTRejected, which early streams and
// opens return once the server refused the client's early data, to an
// error matching qerr.Err0RTTRejected with err kept reachable.
func Rejected0RTT(err error) error {
	return &sentinelError{sentinel: qerr.Err0RTTRejected, err: err}
}

// sentinelError is a taxonomy sentinel with the quic-go error that caused it
// kept reachable. It reads as the sentinel.
type sentinelError struct {
	sentinel error
	err      error
}

func (e *sentinelError) Error() string   { return e.sentinel.Error() }
func (e *sentinelError) Unwrap() []error { return []error{e.sentinel, e.err} }

// CheckCode returns nil when code, an application error code for
// CancelRead, CancelWrite or Conn.CloseWithError, fits in a QUIC varint
// (at most 2^62-1), and else an error matching qerr.ErrInvalidCode. Check every
// code from a user before handing it to quic-go: quic-go panics encoding a
// larger one, on its connection goroutine, which no caller can recover.
func CheckCode(code uint64) error {
	if code > quicvarint.Max {
		return fmt.Errorf("%w: %#x", qerr.ErrInvalidCode, code)
	}
	return nil
}

func is[T error](err error) bool {
	_, ok := errors.AsType[T](err)
	return ok
}
