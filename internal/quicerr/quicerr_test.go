package quicerr

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"testing"

	"github.com/quic-go/quic-go"
	"go.uber.org/goleak"

	qerr "github.com/quicconn/quicconn/errors"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// deadlineErr stands in for quic-go's unexported deadline error: a net.Error
// that unwraps to os.ErrDeadlineExceeded.
type deadlineErr struct{}

func (deadlineErr) Error() string   { return "deadline exceeded" }
func (deadlineErr) Timeout() bool   { return true }
func (deadlineErr) Temporary() bool { return true }
func (deadlineErr) Unwrap() error   { return os.ErrDeadlineExceeded }

func TestConnection(t *testing.T) {
	appRemote := &quic.ApplicationError{Remote: true, ErrorCode: 42, ErrorMessage: "bye"}
	appLocal := &quic.ApplicationError{ErrorCode: 7}
	tlsAlert := &quic.TransportError{Remote: true, ErrorCode: 0x12a, ErrorMessage: "bad certificate"}
	tlsLocal := &quic.TransportError{ErrorCode: 0x12a}
	protocolViolation := &quic.TransportError{Remote: true, ErrorCode: quic.ProtocolViolation, ErrorMessage: "oops"}
	idle := &quic.IdleTimeoutError{}
	handshake := &quic.HandshakeTimeoutError{}
	reset := &quic.StatelessResetError{}
	version := &quic.VersionNegotiationError{Ours: []quic.Version{quic.Version1}}
	wrappedApp := fmt.Errorf("context cause: %w", appRemote)
	other := errors.New("something else")
	already := &qerr.ConnectionError{Reason: qerr.IdleTimeout, Err: idle}

	tests := []struct {
		name    string
		err     error
		reason  qerr.Reason
		code    uint64
		message string
	}{
		{"peer application close keeps code and message", appRemote, qerr.ShutdownByPeer, 42, "bye"},
		{"local application close is ShutdownByLocal", appLocal, qerr.ShutdownByLocal, 7, ""},
		{"TLS alert from peer is a transport code", tlsAlert, qerr.ShutdownByTransport, 0x12a, "bad certificate"},
		{"a bare TLS alert code is named", tlsLocal, qerr.ShutdownByTransport, 0x12a, "CRYPTO_ERROR 0x12a: tls: bad certificate"},
		{"protocol violation", protocolViolation, qerr.ShutdownByTransport, 0xa, "oops"},
		{"idle timeout", idle, qerr.IdleTimeout, 0, ""},
		{"handshake timeout", handshake, qerr.HandshakeTimeout, 0, ""},
		{"stateless reset", reset, qerr.StatelessReset, 0, ""},
		{"version negotiation", version, qerr.VersionNegotiation, 0, ""},
		{"wrapped errors are found", wrappedApp, qerr.ShutdownByPeer, 42, "bye"},
		{"transport closed", quic.ErrTransportClosed, qerr.ConnectionClosed, 0, ""},
		{"server closed", quic.ErrServerClosed, qerr.ConnectionClosed, 0, ""},
		{"net.ErrClosed", net.ErrClosed, qerr.ConnectionClosed, 0, ""},
		{"unknown error", other, qerr.ConnectionClosed, 0, ""},
		{"context cancellation", context.Canceled, qerr.ConnectionClosed, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ce := Connection(tt.err)
			if ce == nil {
				t.Fatal("Connection returned nil")
			}
			if ce.Reason != tt.reason || ce.Code != tt.code || ce.Message != tt.message {
				t.Errorf("got {%v, %#x, %q}, want {%v, %#x, %q}", ce.Reason, ce.Code, ce.Message, tt.reason, tt.code, tt.message)
			}
			if ce.Err != tt.err {
				t.Errorf("Err = %v, want the original error %v", ce.Err, tt.err)
			}
			if !errors.Is(ce, qerr.ErrConnectionLost) {
				t.Error("does not match ErrConnectionLost")
			}
			if !errors.Is(ce, tt.err) {
				t.Error("original error not reachable with errors.Is")
			}
		})
	}

	t.Run("nil maps to nil", func(t *testing.T) {
		if ce := Connection(nil); ce != nil {
			t.Errorf("Connection(nil) = %v", ce)
		}
	})
	t.Run("mapping twice returns the same error", func(t *testing.T) {
		if ce := Connection(already); ce != already {
			t.Errorf("Connection(*ConnectionError) = %p, want %p", ce, already)
		}
		if ce := Connection(fmt.Errorf("op: %w", already)); ce != already {
			t.Errorf("Connection(wrapped *ConnectionError) = %p, want %p", ce, already)
		}
	})
}

func TestIsConnectionError(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"application error", &quic.ApplicationError{Remote: true}, true},
		{"transport error", &quic.TransportError{ErrorCode: 0x12a}, true},
		{"idle timeout", &quic.IdleTimeoutError{}, true},
		{"handshake timeout", &quic.HandshakeTimeoutError{}, true},
		{"stateless reset", &quic.StatelessResetError{}, true},
		{"version negotiation", &quic.VersionNegotiationError{}, true},
		{"transport closed", quic.ErrTransportClosed, true},
		{"server closed", quic.ErrServerClosed, true},
		{"net.ErrClosed", net.ErrClosed, true},
		{"already mapped", &qerr.ConnectionError{Reason: qerr.ConnectionClosed}, true},
		{"wrapped", fmt.Errorf("x: %w", &quic.IdleTimeoutError{}), true},
		{"stream reset", &quic.StreamError{ErrorCode: 1, Remote: true}, false},
		{"write after close", quic.ErrStreamClosed, false},
		{"deadline", deadlineErr{}, false},
		{"EOF", io.EOF, false},
		{"0-RTT rejected", quic.Err0RTTRejected, false},
		{"unknown", errors.New("x"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsConnectionError(tt.err); got != tt.want {
				t.Errorf("IsConnectionError(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

func TestReadWrite(t *testing.T) {
	peerReset := &quic.StreamError{StreamID: 4, ErrorCode: 9, Remote: true}
	localCancel := &quic.StreamError{StreamID: 4, ErrorCode: 3}
	app := &quic.ApplicationError{Remote: true, ErrorCode: 42}
	idle := &quic.IdleTimeoutError{}
	dl := deadlineErr{}
	other := errors.New("BUG: something")

	// check inspects a mapped error; the cases share one shape.
	type check func(t *testing.T, got error)
	isExactly := func(want error) check {
		return func(t *testing.T, got error) {
			if got != want {
				t.Errorf("got %#v, want exactly %#v", got, want)
			}
		}
	}
	streamErr := func(kind qerr.StreamErrorKind, code uint64, remote bool, orig error) check {
		return func(t *testing.T, got error) {
			se, ok := errors.AsType[*qerr.StreamError](got)
			if !ok {
				t.Fatalf("got %v (%T), want *qerr.StreamError", got, got)
			}
			if se.Kind != kind || se.Code != code || se.Remote != remote || se.Err != orig {
				t.Errorf("got %+v, want {Kind:%v Code:%d Remote:%v Err:%v}", se, kind, code, remote, orig)
			}
		}
	}
	connErr := func(reason qerr.Reason, code uint64, orig error) check {
		return func(t *testing.T, got error) {
			if !errors.Is(got, qerr.ErrConnectionLost) {
				t.Errorf("%v does not match ErrConnectionLost", got)
			}
			ce, ok := errors.AsType[*qerr.ConnectionError](got)
			if !ok {
				t.Fatalf("got %v (%T), want *qerr.ConnectionError", got, got)
			}
			if ce.Reason != reason || ce.Code != code || ce.Err != orig {
				t.Errorf("got %+v, want {Reason:%v Code:%d Err:%v}", ce, reason, code, orig)
			}
		}
	}
	matches := func(targets ...error) check {
		return func(t *testing.T, got error) {
			for _, target := range targets {
				if !errors.Is(got, target) {
					t.Errorf("%v does not match %v", got, target)
				}
			}
		}
	}

	Read := func(err error) error { return Read(err, nil) }
	Write := func(err error) error { return Write(err, nil) }
	tests := []struct {
		name  string
		fn    func(error) error
		err   error
		check check
	}{
		{"read nil", Read, nil, isExactly(nil)},
		{"write nil", Write, nil, isExactly(nil)},
		{"read EOF is bare", Read, io.EOF, isExactly(io.EOF)},
		{"read deadline passes through", Read, dl, isExactly(dl)},
		{"write deadline passes through", Write, dl, isExactly(dl)},
		{"read peer RESET_STREAM", Read, peerReset, streamErr(qerr.Reset, 9, true, peerReset)},
		{"read after local CancelRead", Read, localCancel, streamErr(qerr.Reset, 3, false, localCancel)},
		{"write peer STOP_SENDING", Write, peerReset, streamErr(qerr.Stopped, 9, true, peerReset)},
		{"write after local CancelWrite", Write, localCancel, streamErr(qerr.Stopped, 3, false, localCancel)},
		{"read on closed connection", Read, app, connErr(qerr.ShutdownByPeer, 42, app)},
		{"write on timed-out connection", Write, idle, connErr(qerr.IdleTimeout, 0, idle)},
		{"write on closed transport", Write, quic.ErrTransportClosed, connErr(qerr.ConnectionClosed, 0, quic.ErrTransportClosed)},
		{"write after Close", Write, quic.ErrStreamClosed, matches(qerr.ErrFinished, quic.ErrStreamClosed)},
		{"read of ErrStreamClosed is internal", Read, quic.ErrStreamClosed, matches(qerr.ErrInternal, quic.ErrStreamClosed)},
		{"read unknown is internal", Read, other, matches(qerr.ErrInternal, other)},
		{"write unknown is internal", Write, other, matches(qerr.ErrInternal, other)},
		{"write of 0-RTT rejection", Write, quic.Err0RTTRejected, matches(qerr.Err0RTTRejected, quic.Err0RTTRejected)},
		{"read of 0-RTT rejection", Read, quic.Err0RTTRejected, matches(qerr.Err0RTTRejected, quic.Err0RTTRejected)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.check(t, tt.fn(tt.err))
		})
	}

	t.Run("mapped deadline is still a net.Error timeout", func(t *testing.T) {
		var ne net.Error
		if err := Read(dl); !errors.As(err, &ne) || !ne.Timeout() {
			t.Errorf("Read(deadline) = %v, want a net.Error with Timeout", err)
		}
	})
	t.Run("a lost connection is the connection's own error", func(t *testing.T) {
		own := &qerr.ConnectionError{Reason: qerr.ShutdownByLocal, Message: "own"}
		lt := lifetimeFunc(func(error) *qerr.ConnectionError { return own })
		for name, fn := range map[string]func(error, Lifetime) error{"read": readFn, "write": writeFn} {
			if err := fn(app, lt); err != own {
				t.Errorf("%s(connection error, lt) = %v, want the connection's own %p", name, err, own)
			}
			if err := fn(peerReset, lt); err == own {
				t.Errorf("%s(stream error, lt) = the connection's error, want a stream error", name)
			}
		}
	})
	t.Run("ErrFinished reads as the sentinel", func(t *testing.T) {
		if got, want := Write(quic.ErrStreamClosed).Error(), qerr.ErrFinished.Error(); got != want {
			t.Errorf("Error() = %q, want %q", got, want)
		}
	})
}

var readFn, writeFn = Read, Write

type lifetimeFunc func(error) *qerr.ConnectionError

func (f lifetimeFunc) ConnectionError(cause error) *qerr.ConnectionError { return f(cause) }

func TestCheckCode(t *testing.T) {
	tests := []struct {
		code uint64
		ok   bool
	}{
		{0, true},
		{1<<62 - 1, true},
		{1 << 62, false},
		{1<<64 - 1, false},
	}
	for _, tt := range tests {
		err := CheckCode(tt.code)
		if (err == nil) != tt.ok {
			t.Errorf("CheckCode(%#x) = %v, want ok=%v", tt.code, err, tt.ok)
		}
		if err != nil && !errors.Is(err, qerr.ErrInvalidCode) {
			t.Errorf("CheckCode(%#x) = %v, want ErrInvalidCode", tt.code, err)
		}
	}
}
