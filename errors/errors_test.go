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

// TestTaxonomy proves every row of DESIGN.md's error table: each variant of
// the Rust API, and each error quicconn adds, has a Go form that matches its
// sentinel with errors.Is and its type with errors.As, bare and inside an
// *OpError.
func TestTaxonomy(t *testing.T) {
	tests := []struct {
		row      string
		err      error
		is       []error // sentinels it must match
		isNot    []error // sentinels it must not match
		as       func(error) bool
		contains []string // substrings of the message
	}{
		{
			row:   "ConnectionError::ShutdownByTransport(status, code)",
			err:   &qerr.ConnectionError{Reason: qerr.ShutdownByTransport, Code: 0x12a, Message: "tls: bad certificate", Err: errCause},
			is:    []error{qerr.ErrConnectionLost, errCause},
			isNot: []error{qerr.ErrBadCertificate},
			as: func(err error) bool {
				var ce *qerr.ConnectionError
				return errors.As(err, &ce) && ce.Reason == qerr.ShutdownByTransport && ce.Code == 0x12a && !ce.Remote
			},
			contains: []string{"shutdown by transport", "0x12a", "tls: bad certificate"},
		},
		{
			row:   "who closed: the peer (ConnectionError.Remote)",
			err:   &qerr.ConnectionError{Reason: qerr.ShutdownByTransport, Code: 0x12a, Message: "tls: bad certificate", Remote: true},
			is:    []error{qerr.ErrConnectionLost},
			isNot: []error{qerr.ErrBadCertificate},
			as: func(err error) bool {
				var ce *qerr.ConnectionError
				return errors.As(err, &ce) && ce.Remote
			},
			contains: []string{"shutdown by transport (code 0x12a) from the peer: tls: bad certificate"},
		},
		{
			row:      "trust removed from a live peer",
			err:      &qerr.ConnectionError{Reason: qerr.TrustRevoked, Code: 0x51, Message: "certificate no longer trusted"},
			is:       []error{qerr.ErrConnectionLost, qerr.ErrBadCertificate},
			isNot:    []error{qerr.ErrInternal},
			as:       reasonIs(qerr.TrustRevoked),
			contains: []string{"peer certificate no longer trusted (code 0x51)"},
		},
		{
			row: "ConnectionError::ShutdownByPeer(code)",
			err: &qerr.ConnectionError{Reason: qerr.ShutdownByPeer, Code: 0xbeef},
			is:  []error{qerr.ErrConnectionLost},
			as: func(err error) bool {
				var ce *qerr.ConnectionError
				return errors.As(err, &ce) && ce.Reason == qerr.ShutdownByPeer && ce.Code == 0xbeef
			},
			contains: []string{"shutdown by peer", "0xbeef"},
		},
		{
			row:      "ConnectionError::ShutdownByLocal",
			err:      &qerr.ConnectionError{Reason: qerr.ShutdownByLocal, Code: 7},
			is:       []error{qerr.ErrConnectionLost},
			as:       reasonIs(qerr.ShutdownByLocal),
			contains: []string{"shutdown by local", "0x7"},
		},
		{
			row:      "ConnectionError::ConnectionClosed",
			err:      &qerr.ConnectionError{Reason: qerr.ConnectionClosed},
			is:       []error{qerr.ErrConnectionLost},
			as:       reasonIs(qerr.ConnectionClosed),
			contains: []string{"connection closed"},
		},
		{row: "idle timeout", err: &qerr.ConnectionError{Reason: qerr.IdleTimeout}, is: []error{qerr.ErrConnectionLost}, as: reasonIs(qerr.IdleTimeout), contains: []string{"idle timeout"}},
		{row: "handshake timeout", err: &qerr.ConnectionError{Reason: qerr.HandshakeTimeout}, is: []error{qerr.ErrConnectionLost}, as: reasonIs(qerr.HandshakeTimeout), contains: []string{"handshake timeout"}},
		{row: "stateless reset", err: &qerr.ConnectionError{Reason: qerr.StatelessReset}, is: []error{qerr.ErrConnectionLost}, as: reasonIs(qerr.StatelessReset), contains: []string{"stateless reset"}},
		{row: "version negotiation", err: &qerr.ConnectionError{Reason: qerr.VersionNegotiation}, is: []error{qerr.ErrConnectionLost}, as: reasonIs(qerr.VersionNegotiation), contains: []string{"version negotiation"}},
		{
			row:   "*::ConnectionNotStarted",
			err:   qerr.ErrNotStarted,
			is:    []error{qerr.ErrNotStarted},
			isNot: []error{qerr.ErrConnectionLost},
		},
		{
			row: "DgramSendError::Denied",
			err: qerr.ErrDatagramDenied,
			is:  []error{qerr.ErrDatagramDenied},
		},
		{
			row:   "DgramSendError::TooBig",
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
			row: "StartError::BadCertificate",
			err: &qerr.CertificateError{Reason: "certificate hash not trusted", Hash: [32]byte{0xab}, Err: errCause},
			is:  []error{qerr.ErrBadCertificate, errCause},
			as: func(err error) bool {
				var e *qerr.CertificateError
				return errors.As(err, &e) && e.Hash[0] == 0xab
			},
			contains: []string{"certificate hash not trusted", "ab00"},
		},
		{
			row:   "who rejected: the peer (CertificateError.Remote)",
			err:   &qerr.CertificateError{Reason: "tls: bad certificate alert", Hash: [32]byte{0xcd}, Remote: true},
			is:    []error{qerr.ErrBadCertificate},
			isNot: []error{qerr.ErrConnectionLost},
			as: func(err error) bool {
				var e *qerr.CertificateError
				return errors.As(err, &e) && e.Remote
			},
			contains: []string{"bad certificate: the peer rejected our certificate: tls: bad certificate alert", "cd00"},
		},
		{
			row:      "who rejected: the peer, with no reason known",
			err:      &qerr.CertificateError{Remote: true},
			is:       []error{qerr.ErrBadCertificate},
			contains: []string{"bad certificate: the peer rejected our certificate"},
		},
		{
			row:   "early data refused by the server",
			err:   qerr.Err0RTTRejected,
			is:    []error{qerr.Err0RTTRejected},
			isNot: []error{qerr.ErrConnectionLost, qerr.ErrClosed, qerr.ErrInternal},
		},
		{row: "code above 2^62-1", err: qerr.ErrInvalidCode, is: []error{qerr.ErrInvalidCode}, isNot: []error{qerr.ErrInternal}},
		{row: "no peer certificate", err: qerr.ErrNoCertificate, is: []error{qerr.ErrNoCertificate}, isNot: []error{qerr.ErrBadCertificate}},
		{row: "stream StartError::LimitReached", err: qerr.ErrLimitReached, is: []error{qerr.ErrLimitReached}},
		{
			row:   "ReadError::Reset(code)",
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
			row: "WriteError::Stopped(code)",
			err: &qerr.StreamError{Kind: qerr.Stopped, Code: 0x11},
			as: func(err error) bool {
				var e *qerr.StreamError
				return errors.As(err, &e) && e.Kind == qerr.Stopped && !e.Remote
			},
			contains: []string{"stopped", "locally", "0x11"},
		},
		{row: "ReadError::Closed / WriteError::Closed", err: qerr.ErrClosed, is: []error{qerr.ErrClosed}, isNot: []error{qerr.ErrFinished}},
		{row: "WriteError::Finished", err: qerr.ErrFinished, is: []error{qerr.ErrFinished}, isNot: []error{qerr.ErrClosed}},
		{
			row:   "*::OtherError(status)",
			err:   qerr.Internal(errCause),
			is:    []error{qerr.ErrInternal, errCause},
			isNot: []error{qerr.ErrConnectionLost},
		},
		{
			row: "message too large",
			err: &qerr.MessageTooLargeError{Size: 1 << 32, Max: 16 << 20},
			as: func(err error) bool {
				var e *qerr.MessageTooLargeError
				return errors.As(err, &e) && e.Size == 1<<32
			},
			contains: []string{"4294967296", "16777216"},
		},
		{
			row: "configuration",
			err: &qerr.ConfigError{Field: "Settings.IdleTimeout", Reason: "must not be negative"},
			as: func(err error) bool {
				var e *qerr.ConfigError
				return errors.As(err, &e) && e.Field == "Settings.IdleTimeout"
			},
			contains: []string{"Settings.IdleTimeout", "must not be negative"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.row, func(t *testing.T) {
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
	for r := qerr.ShutdownByTransport; r <= qerr.TrustRevoked; r++ {
		if s := r.String(); strings.HasPrefix(s, "Reason(") {
			t.Errorf("Reason %d has no name", r)
		}
	}
	if s := (qerr.TrustRevoked + 1).String(); !strings.HasPrefix(s, "Reason(") {
		t.Errorf("the Reason after TrustRevoked has a name, %q: add it to the loop above", s)
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
