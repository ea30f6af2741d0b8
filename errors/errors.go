// Package errors is quicconn's error taxonomy.
//
// Every operation of the conn and stream packages reports failure through the
// sentinels and types defined here, so callers match them with the standard
// library's errors.Is and errors.As. Import it under another name, for example
//
//	import qerr "github.com/quicconn/quicconn/errors"
//
// Errors returned by operations are wrapped in an *OpError that names the
// operation, like *net.OpError. The error from quic-go that caused a failure,
// when there is one, stays reachable through Unwrap.
//
// The sentinels mirror the per-operation enums of the Connection API of a Rust
// wrapper over msquic, which quicconn follows: where that API has
// StartError::ConnectionNotStarted, DgramSendError::ConnectionNotStarted and
// so on, Go has the single ErrNotStarted.
package errors

import (
	"errors"
	"fmt"
)

// Sentinels. Match them with errors.Is.
var (
	// ErrNotStarted reports an operation on a connection that has not been
	// started, or that needs a completed handshake it does not have yet.
	ErrNotStarted = errors.New("quicconn: connection not started")

	// ErrConnectionLost reports an operation on a connection that is shutting
	// down or shut down. Every *ConnectionError matches it; use errors.As to
	// learn why the connection ended.
	ErrConnectionLost = errors.New("quicconn: connection lost")

	// ErrLimitReached reports that opening a stream would exceed the peer's
	// stream limit and the caller asked not to wait for credit.
	ErrLimitReached = errors.New("quicconn: stream limit reached")

	// ErrDatagramDenied reports datagrams that cannot be used because one
	// side did not enable them: the peer (it did not enable datagram
	// receive) or this side's own Settings. The error says which.
	ErrDatagramDenied = errors.New("quicconn: datagrams denied")

	// ErrDatagramTooBig is matched by *DatagramTooBigError.
	ErrDatagramTooBig = errors.New("quicconn: datagram too big")

	// ErrBadCertificate is matched by *CertificateError.
	ErrBadCertificate = errors.New("quicconn: bad certificate")

	// ErrNoCertificate reports that the handshake completed without a peer
	// certificate, as with a server that does not ask clients for one.
	ErrNoCertificate = errors.New("quicconn: peer presented no certificate")

	// ErrClosed reports use of a stream direction that is closed or does not
	// exist, such as reading the read side of an outbound unidirectional
	// stream.
	ErrClosed = errors.New("quicconn: stream closed")

	// ErrFinished reports a write after the write side was finished (FIN sent).
	ErrFinished = errors.New("quicconn: stream finished")

	// ErrInvalidCode reports an application error code above 2^62-1, the
	// largest a QUIC variable-length integer holds.
	ErrInvalidCode = errors.New("quicconn: error code exceeds 2^62-1")

	// Err0RTTRejected reports data sent as 0-RTT early data that the server
	// refused: a stream opened or a datagram sent before the handshake
	// completed, on a connection started with StartEarly. The connection
	// itself goes on over 1-RTT; what failed with Err0RTTRejected was not
	// delivered and must be sent again, on a new stream, if it still
	// matters.
	Err0RTTRejected = errors.New("quicconn: 0-RTT early data rejected by the server")

	// ErrInternal is matched by failures that fit no other category; the
	// underlying quic-go error is wrapped beside it.
	ErrInternal = errors.New("quicconn: internal error")
)

// OpError is the error type returned by quicconn operations. It names the
// operation that failed, like *net.OpError.
type OpError struct {
	// Op is the operation, such as "start", "open stream" or "send datagram".
	Op string
	// Err is the error that occurred during the operation.
	Err error
}

func (e *OpError) Error() string {
	if e.Err == nil {
		return "quicconn: " + e.Op + ": <nil>"
	}
	return "quicconn: " + e.Op + ": " + trimPrefix(e.Err.Error())
}

// Unwrap returns the underlying error.
func (e *OpError) Unwrap() error { return e.Err }

// Op wraps err in an *OpError for operation op. It returns nil for a nil err
// and leaves err unwrapped when it already is an *OpError, so an error names
// its first (innermost-called) operation once.
func Op(op string, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := err.(*OpError); ok {
		return err
	}
	return &OpError{Op: op, Err: err}
}

// trimPrefix drops the package prefix of a wrapped quicconn message so that
// an OpError reads "quicconn: start: connection lost" and not
// "quicconn: start: quicconn: connection lost".
func trimPrefix(s string) string {
	const p = "quicconn: "
	if len(s) > len(p) && s[:len(p)] == p {
		return s[len(p):]
	}
	return s
}

// Reason says why a connection ended.
type Reason uint8

// Reasons a connection ends. The zero value is not a valid Reason.
const (
	// ShutdownByTransport: the QUIC transport closed the connection with a
	// transport error code (a protocol violation, a TLS alert, ...).
	ShutdownByTransport Reason = iota + 1
	// ShutdownByPeer: the peer closed the connection with an application code.
	ShutdownByPeer
	// ShutdownByLocal: this side closed the connection with Shutdown.
	ShutdownByLocal
	// ConnectionClosed: the connection was closed without a code, for
	// example because its Registration or Listener was closed.
	ConnectionClosed
	// IdleTimeout: nothing was received for the negotiated idle timeout.
	IdleTimeout
	// HandshakeTimeout: the handshake did not complete within the
	// configured HandshakeTimeout.
	HandshakeTimeout
	// StatelessReset: the peer sent a stateless reset, for example because
	// it restarted and lost the connection's state.
	StatelessReset
	// VersionNegotiation: client and server share no QUIC version.
	VersionNegotiation
	// TrustRevoked: this side closed the connection because a trust change
	// of its credential (an Untrust call) left the peer's certificate
	// untrusted. A *ConnectionError with this Reason matches
	// ErrBadCertificate as well as ErrConnectionLost; Code is the
	// application code sent to the peer.
	TrustRevoked
)

var reasonNames = [...]string{
	ShutdownByTransport: "shutdown by transport",
	ShutdownByPeer:      "shutdown by peer",
	ShutdownByLocal:     "shutdown by local",
	ConnectionClosed:    "connection closed",
	IdleTimeout:         "idle timeout",
	HandshakeTimeout:    "handshake timeout",
	StatelessReset:      "stateless reset",
	VersionNegotiation:  "version negotiation failed",
	TrustRevoked:        "peer certificate no longer trusted",
}

// String returns a lower-case phrase such as "shutdown by peer".
func (r Reason) String() string {
	if int(r) < len(reasonNames) && reasonNames[r] != "" {
		return reasonNames[r]
	}
	return fmt.Sprintf("Reason(%d)", uint8(r))
}

// ConnectionError says why a connection ended. It is what
// Connection.Err returns, and what operations on an ended connection wrap.
// Every *ConnectionError matches ErrConnectionLost; one with Reason
// TrustRevoked matches ErrBadCertificate too.
type ConnectionError struct {
	// Reason classifies the end.
	Reason Reason
	// Code is the QUIC error code: an application code for ShutdownByPeer,
	// ShutdownByLocal and TrustRevoked, a transport code for
	// ShutdownByTransport, else 0.
	Code uint64
	// Message is the reason phrase sent with the close, if any.
	Message string
	// Remote is true when the peer sent the close, false when this side
	// (or its transport) did. It tells apart, say, a ShutdownByTransport
	// with code 0x12a (bad_certificate) in which the peer rejected this
	// side's certificate from one in which this side rejected the peer's.
	Remote bool
	// Err is the underlying quic-go error, if any.
	Err error
}

func (e *ConnectionError) Error() string {
	s := "quicconn: connection lost: " + e.Reason.String()
	switch e.Reason {
	case ShutdownByTransport, ShutdownByPeer, ShutdownByLocal, TrustRevoked:
		s += fmt.Sprintf(" (code 0x%x)", e.Code)
	}
	if e.Remote && e.Reason != ShutdownByPeer {
		s += " from the peer"
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// Is makes every *ConnectionError match ErrConnectionLost, and one with
// Reason TrustRevoked match ErrBadCertificate as well.
func (e *ConnectionError) Is(target error) bool {
	return target == ErrConnectionLost || target == ErrBadCertificate && e.Reason == TrustRevoked
}

// Unwrap returns the underlying quic-go error, if any.
func (e *ConnectionError) Unwrap() error { return e.Err }

// StreamErrorKind says which way a stream direction was aborted.
type StreamErrorKind uint8

const (
	// Reset: the sending side was aborted (RESET_STREAM); reads fail.
	Reset StreamErrorKind = iota + 1
	// Stopped: the receiving side asked the sender to stop (STOP_SENDING);
	// writes fail.
	Stopped
)

// String returns "reset" or "stopped".
func (k StreamErrorKind) String() string {
	switch k {
	case Reset:
		return "reset"
	case Stopped:
		return "stopped"
	}
	return fmt.Sprintf("StreamErrorKind(%d)", uint8(k))
}

// StreamError reports a stream direction aborted with an application code:
// ReadError::Reset and WriteError::Stopped in the Rust API.
type StreamError struct {
	// Kind is Reset for reads and Stopped for writes.
	Kind StreamErrorKind
	// Code is the application error code.
	Code uint64
	// Remote is true when the peer aborted, false when this side did.
	Remote bool
	// Err is the underlying quic-go error, if any.
	Err error
}

func (e *StreamError) Error() string {
	who := "locally"
	if e.Remote {
		who = "by peer"
	}
	return fmt.Sprintf("quicconn: stream %s %s (code 0x%x)", e.Kind, who, e.Code)
}

// Unwrap returns the underlying quic-go error, if any.
func (e *StreamError) Unwrap() error { return e.Err }

// DatagramTooBigError reports a datagram larger than the connection can send
// now. It matches ErrDatagramTooBig.
type DatagramTooBigError struct {
	// Max is the largest payload that would have been accepted.
	Max int
}

func (e *DatagramTooBigError) Error() string {
	return fmt.Sprintf("quicconn: datagram too big (max %d bytes)", e.Max)
}

// Is makes every *DatagramTooBigError match ErrDatagramTooBig.
func (e *DatagramTooBigError) Is(target error) bool { return target == ErrDatagramTooBig }

// CertificateError reports a certificate rejected in a handshake: the
// peer's, by this side's verification policy, or, with Remote set, this
// side's, by the peer. It matches ErrBadCertificate.
type CertificateError struct {
	// Reason says which rule failed, such as "certificate hash not trusted".
	// When Remote is set it is what this side learned of the peer's
	// decision, which may be no more than the TLS alert.
	Reason string
	// Hash is the SHA-256 of the rejected certificate's DER, or zero when the
	// certificate could not be read.
	Hash [32]byte
	// Remote is true when the peer rejected this side's certificate, false
	// when this side rejected the peer's.
	Remote bool
	// Err is the underlying error (a parse or signature failure), if any.
	Err error
}

func (e *CertificateError) Error() string {
	s := "quicconn: bad certificate: "
	if e.Remote {
		s += "the peer rejected our certificate"
		if e.Reason != "" {
			s += ": "
		}
	}
	s += e.Reason
	if e.Hash != ([32]byte{}) {
		s += fmt.Sprintf(" (sha256 %x)", e.Hash[:])
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Is makes every *CertificateError match ErrBadCertificate.
func (e *CertificateError) Is(target error) bool { return target == ErrBadCertificate }

// Unwrap returns the underlying error, if any.
func (e *CertificateError) Unwrap() error { return e.Err }

// MessageTooLargeError reports a message whose length prefix exceeds the
// reader's bound, or a message to send that exceeds the sender's bound. It is
// returned before any buffer for the message is allocated.
type MessageTooLargeError struct {
	// Size is the announced or attempted size.
	Size uint64
	// Max is the bound.
	Max int
}

func (e *MessageTooLargeError) Error() string {
	return fmt.Sprintf("quicconn: message of %d bytes exceeds the limit of %d bytes", e.Size, e.Max)
}

// ConfigError reports an invalid configuration value.
type ConfigError struct {
	// Field names the offending setting, such as "Settings.IdleTimeout".
	Field string
	// Reason says what is wrong with it.
	Reason string
}

func (e *ConfigError) Error() string {
	return "quicconn: invalid configuration: " + e.Field + ": " + e.Reason
}

// Internal wraps err, an error that fits no other category, so that it
// matches ErrInternal while err stays reachable with errors.As.
func Internal(err error) error {
	if err == nil {
		return nil
	}
	return &internalError{err: err}
}

type internalError struct{ err error }

func (e *internalError) Error() string { return "quicconn: internal error: " + e.err.Error() }

func (e *internalError) Unwrap() []error { return []error{ErrInternal, e.err} }
