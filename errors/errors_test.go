package errors_test

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	qerr "github.com/quicconn/quicconn/errors"
)

// errCause stands in for a quic-go error wrapped by a quicconn error.
var errCause = errors.New("underlying quic-go error")

// TestTaxonomy proves every row of DESIGN.md's error table: each seed
// variant's Go form matches its sentinel with errors.Is and its type with
// errors.As, bare and inside an *OpError.
func TestTaxonomy(t *testing.T) {
	tests := []struct {
		seed     string
		err      error
		is       []error // sentinels it must match
		isNot    []error // sentinels it must not match
		as       func(error) bool
		contains []string // substrings of the message
	}{
		{
			seed: "ConnectionError::ShutdownByTransport(status, code)",
			err:  &qerr.ConnectionError{Reason: qerr.ShutdownByTransport, Code: 0x12a, Message: "tls: bad certificate", Err: errCause},
			is:   []error{qerr.ErrConnectionLost, errCause},
			as: func(err error) bool {
				var ce *qerr.ConnectionError
				return errors.As(err, &ce) && ce.Reason == qerr.ShutdownByTransport && ce.Code == 0x12a
			},
			contains: []string{"shutdown by transport", "0x12a", "tls: bad certificate"},
		},
		{
			seed: "ConnectionError::ShutdownByPeer(code)",
			err:  &qerr.ConnectionError{Reason: qerr.ShutdownByPeer, Code: 0xbeef},
			is:   []error{qerr.ErrConnectionLost},
			as: func(err error) bool {
				var ce *qerr.ConnectionError
				return errors.As(err, &ce) && ce.Reason == qerr.ShutdownByPeer && ce.Code == 0xbeef
			},
			contains: []string{"shutdown by peer", "0xbeef"},
		},
		{
			seed:     "ConnectionError::ShutdownByLocal",
			err:      &qerr.ConnectionError{Reason: qerr.ShutdownByLocal, Code: 7},
			is:       []error{qerr.ErrConnectionLost},
			as:       reasonIs(qerr.ShutdownByLocal),
			contains: []string{"shutdown by local", "0x7"},
		},
		{
			seed:     "ConnectionError::ConnectionClosed",
			err:      &qerr.ConnectionError{Reason: qerr.ConnectionClosed},
			is:       []error{qerr.ErrConnectionLost},
			as:       reasonIs(qerr.ConnectionClosed),
			contains: []string{"connection closed"},
		},
		{seed: "idle timeout", err: &qerr.ConnectionError{Reason: qerr.IdleTimeout}, is: []error{qerr.ErrConnectionLost}, as: reasonIs(qerr.IdleTimeout), contains: []string{"idle timeout"}},
		{seed: "handshake timeout", err: &qerr.ConnectionError{Reason: qerr.HandshakeTimeout}, is: []error{qerr.ErrConnectionLost}, as: reasonIs(qerr.HandshakeTimeout), contains: []string{"handshake timeout"}},
		{seed: "stateless reset", err: &qerr.ConnectionError{Reason: qerr.StatelessReset}, is: []error{qerr.ErrConnectionLost}, as: reasonIs(qerr.StatelessReset), contains: []string{"stateless reset"}},
		{seed: "version negotiation", err: &qerr.ConnectionError{Reason: qerr.VersionNegotiation}, is: []error{qerr.ErrConnectionLost}, as: reasonIs(qerr.VersionNegotiation), contains: []string{"version negotiation"}},
		{
			seed:  "*::ConnectionNotStarted",
			err:   qerr.ErrNotStarted,
			is:    []error{qerr.ErrNotStarted},
			isNot: []error{qerr.ErrConnectionLost},
		},
		{
			seed: "DgramSendError::Denied",
			err:  qerr.ErrDatagramDenied,
			is:   []error{qerr.ErrDatagramDenied},
		},
		{
			seed:  "DgramSendError::TooBig",
			err:   &qerr.DatagramTooBigError{Max: 1200},
			is:    []error{qerr.ErrDatagramTooBig},
			isNot: []error{qerr.ErrDatagramDenied},
			as: func(err error) bool {
				var e *qerr.DatagramTooBigError
				return errors.As(err, &e) && e.Max == 1200
			},
			contains: []string{"1200"},
		},
		{
			seed: "StartError::BadCertificate",
			err:  &qerr.CertificateError{Reason: "certificate hash not trusted", Hash: [32]byte{0xab}, Err: errCause},
			is:   []error{qerr.ErrBadCertificate, errCause},
			as: func(err error) bool {
				var e *qerr.CertificateError
				return errors.As(err, &e) && e.Hash[0] == 0xab
			},
			contains: []string{"certificate hash not trusted", "ab00"},
		},
		{seed: "code above 2^62-1", err: qerr.ErrInvalidCode, is: []error{qerr.ErrInvalidCode}, isNot: []error{qerr.ErrInternal}},
		{seed: "no peer certificate", err: qerr.ErrNoCertificate, is: []error{qerr.ErrNoCertificate}, isNot: []error{qerr.ErrBadCertificate}},
		{seed: "stream StartError::LimitReached", err: qerr.ErrLimitReached, is: []error{qerr.ErrLimitReached}},
		{
			seed:  "ReadError::Reset(code)",
			err:   &qerr.StreamError{Kind: qerr.Reset, Code: 0x10, Remote: true, Err: errCause},
			is:    []error{errCause},
			isNot: []error{qerr.ErrConnectionLost, qerr.ErrClosed},
			as: func(err error) bool {
				var e *qerr.StreamError
				return errors.As(err, &e) && e.Kind == qerr.Reset && e.Code == 0x10 && e.Remote
			},
			contains: []string{"reset", "by peer", "0x10"},
		},
		{
			seed: "WriteError::Stopped(code)",
			err:  &qerr.StreamError{Kind: qerr.Stopped, Code: 0x11},
			as: func(err error) bool {
				var e *qerr.StreamError
				return errors.As(err, &e) && e.Kind == qerr.Stopped && !e.Remote
			},
			contains: []string{"stopped", "locally", "0x11"},
		},
		{seed: "ReadError::Closed / WriteError::Closed", err: qerr.ErrClosed, is: []error{qerr.ErrClosed}, isNot: []error{qerr.ErrFinished}},
		{seed: "WriteError::Finished", err: qerr.ErrFinished, is: []error{qerr.ErrFinished}, isNot: []error{qerr.ErrClosed}},
		{
			seed:  "*::OtherError(status)",
			err:   qerr.Internal(errCause),
			is:    []error{qerr.ErrInternal, errCause},
			isNot: []error{qerr.ErrConnectionLost},
		},
		{
			seed: "message too large",
			err:  &qerr.MessageTooLargeError{Size: 1 << 32, Max: 16 << 20},
			as: func(err error) bool {
				var e *qerr.MessageTooLargeError
				return errors.As(err, &e) && e.Size == 1<<32
			},
			contains: []string{"4294967296", "16777216"},
		},
		{
			seed: "configuration",
			err:  &qerr.ConfigError{Field: "Settings.IdleTimeout", Reason: "must not be negative"},
			as: func(err error) bool {
				var e *qerr.ConfigError
				return errors.As(err, &e) && e.Field == "Settings.IdleTimeout"
			},
			contains: []string{"Settings.IdleTimeout", "must not be negative"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.seed, func(t *testing.T) {
			for _, wrapped := range []struct {
				name string
				err  error
			}{
				{"bare", tt.err},
				{"OpError", qerr.Op("some op", tt.err)},
				{"OpError in fmt.Errorf", fmt.Errorf("context: %w", qerr.Op("some op", tt.err))},
			} {
				for _, target := range tt.is {
					if !errors.Is(wrapped.err, target) {
						t.Errorf("%s: errors.Is(%v, %v) = false, want true", wrapped.name, wrapped.err, target)
					}
				}
				for _, target := range tt.isNot {
					if errors.Is(wrapped.err, target) {
						t.Errorf("%s: errors.Is(%v, %v) = true, want false", wrapped.name, wrapped.err, target)
					}
				}
				if tt.as != nil && !tt.as(wrapped.err) {
					t.Errorf("%s: errors.As on %v failed", wrapped.name, wrapped.err)
				}
				for _, s := range tt.contains {
					if !strings.Contains(wrapped.err.Error(), s) {
						t.Errorf("%s: message %q does not contain %q", wrapped.name, wrapped.err.Error(), s)
					}
				}
			}
			var op *qerr.OpError
			if !errors.As(qerr.Op("some op", tt.err), &op) || op.Op != "some op" {
				t.Errorf("Op did not produce an *OpError naming the operation")
			}
		})
	}
}

func reasonIs(r qerr.Reason) func(error) bool {
	return func(err error) bool {
		var ce *qerr.ConnectionError
		return errors.As(err, &ce) && ce.Reason == r
	}
}

func TestOp(t *testing.T) {
	if qerr.Op("x", nil) != nil {
		t.Error("Op(nil) is not nil")
	}
	inner := qerr.Op("inner", qerr.ErrClosed)
	if got := qerr.Op("outer", inner); got != inner {
		t.Errorf("Op re-wrapped an *OpError: %v", got)
	}
	if got, want := qerr.Op("read", qerr.ErrClosed).Error(), "quicconn: read: stream closed"; got != want {
		t.Errorf("message = %q, want %q", got, want)
	}
	if got := qerr.Op("read", io.ErrUnexpectedEOF).Error(); got != "quicconn: read: unexpected EOF" {
		t.Errorf("message = %q", got)
	}
}

func TestStrings(t *testing.T) {
	for r := qerr.ShutdownByTransport; r <= qerr.VersionNegotiation; r++ {
		if s := r.String(); strings.HasPrefix(s, "Reason(") {
			t.Errorf("Reason %d has no name", r)
		}
	}
	if s := qerr.Reason(0).String(); s != "Reason(0)" {
		t.Errorf("Reason(0).String() = %q", s)
	}
	if qerr.Reset.String() != "reset" || qerr.Stopped.String() != "stopped" {
		t.Error("StreamErrorKind names")
	}
}

func ExampleConnectionError() {
	var err error = qerr.Op("accept stream", &qerr.ConnectionError{Reason: qerr.ShutdownByPeer, Code: 0x2a})

	var ce *qerr.ConnectionError
	if errors.Is(err, qerr.ErrConnectionLost) && errors.As(err, &ce) {
		fmt.Println(ce.Reason, ce.Code)
	}
	fmt.Println(err)
	// Output:
	// shutdown by peer 42
	// quicconn: accept stream: connection lost: shutdown by peer (code 0x2a)
}
