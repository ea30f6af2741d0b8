package conn

// The lifetime of a connection: its state, its error and every signal
// derived from them, changed in one place, setState.

import (
	"crypto/x509"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/quic-go/quic-go"
	"github.com/quicconn/quicconn/certverify"
	qerr "github.com/quicconn/quicconn/errors"
	"github.com/quicconn/quicconn/internal/gate"
	"github.com/quicconn/quicconn/internal/quicerr"
)

// State is a connection's place in its lifecycle. States only move forward:
//
//	Open → Connecting → Connected → Shutdown → ShutdownComplete
//
// A connection may skip states: a failed handshake goes from Connecting to
// Shutdown, and one abandoned before it was started never leaves Open.
type State uint8

const (
	// Open is a connection made by New and not yet started. It holds no
	// socket and no goroutine.
	Open State = iota
	// Connecting is a connection whose handshake is under way. A server-side
	// connection from Listener.Accept starts here.
	Connecting
	// Connected is a connection whose handshake is complete (and, for a
	// client that presented a certificate, confirmed by the server).
	Connected
	// Shutdown is a connection that is closing: locally, by the peer or by
	// the transport. Its error is known.
	Shutdown
	// ShutdownComplete is a closed connection whose resources are released
	// and whose waiters have all been woken.
	ShutdownComplete
)

var stateNames = [...]string{
	Open:             "Open",
	Connecting:       "Connecting",
	Connected:        "Connected",
	Shutdown:         "Shutdown",
	ShutdownComplete: "ShutdownComplete",
}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// lifetime is the state of a connection and what follows from it. Its
// fields are guarded by the connection's mu and changed only by setState,
// except for the facts that this package learns along the way and that
// decide which error the connection ends with (own, certErr, cert).
//
// Invariants, which setState enforces:
//   - the state only moves forward;
//   - err is set exactly when the state reaches Shutdown, and never
//     changes after;
//   - every event that can no longer happen is set in the same step that
//     makes it impossible, so that no waiter waits for it: ready and
//     certKnown at Shutdown, the datagram queue closed at Shutdown;
//   - connected holds the quic.Conn exactly while the state is Connected.
type lifetime struct {
	state State
	err   *qerr.ConnectionError
	// local is set when the application's Shutdown closed the connection.
	local bool
	// own is the reason and cause of a close that this package made for a
	// reason of its own (Registration.Close, the handshake budget, revoked
	// trust), recorded before the close so that the connection's error says
	// so, whatever quic-go reports.
	own struct {
		reason qerr.Reason
		code   uint64 // the application code the close sends
		cause  error  // its Error() is the reason phrase the close sends
	}
	// certErr is why this side rejected the peer's certificate.
	certErr error
	// certRequested is set when the peer asked this side for a certificate
	// in the handshake, and presented when this side sent one.
	certRequested, presented bool
	// cert is the peer's verified leaf certificate, and certHash its hash.
	cert     *x509.Certificate
	certHash certverify.CertHash
	// stopWatch ends the watch, begun when the peer was verified, that
	// closes the connection when the credential stops trusting the peer.
	stopWatch func() bool
	// watchEnded is set once finish has taken stopWatch: a watch that
	// begins after it (a server's Accept may store the peer late) is
	// stopped at once.
	watchEnded bool

	ready      gate.Event // Connected, or never will be
	earlyReady gate.Event // early is set, or Connected, or never will be
	certKnown  gate.Event // cert is set, or never will be
	done       gate.Event // ShutdownComplete

	// connected lets the per-operation paths (streams, datagrams) check the
	// state without taking mu.
	connected atomic.Pointer[quic.Conn]
	// early holds the quic.Conn while a Connecting connection may already
	// carry early data: a client after StartEarly with 0-RTT keys (to open
	// streams and send datagrams), a server with Allow0RTT (to accept them).
	early atomic.Pointer[quic.Conn]
	// used0RTT is set at Connected when the server accepted early data.
	used0RTT bool
}

// setState moves c to state to, and updates in the same step everything
// derived from the state. err is the connection's error, required when to
// is Shutdown or later and the error is not yet set, ignored otherwise. A
// move that is not forward is ignored; setState reports whether it moved.
// c.mu must be held.
func (c *Connection) setState(to State, err *qerr.ConnectionError) bool {
	lt := &c.lt
	if to <= lt.state {
		return false
	}
	if to >= Shutdown && lt.err == nil {
		if err == nil {
			panic(fmt.Sprintf("conn: move from %v to %v without an error", lt.state, to))
		}
		lt.err = err
	}
	from := lt.state
	lt.state = to
	switch to {
	case Connected:
		lt.connected.Store(c.qc)
		lt.early.Store(nil)
		lt.certKnown.Set()
		lt.ready.Set()
		lt.earlyReady.Set()
	case Shutdown, ShutdownComplete:
		if from < Shutdown {
			lt.connected.Store(nil)
			lt.early.Store(nil)
			lt.certKnown.Set()
			lt.ready.Set()
			lt.earlyReady.Set()
			if c.dgrams != nil {
				c.dgrams.Close(lt.err)
			}
		}
		if to == ShutdownComplete {
			lt.done.Set()
		}
	}
	return true
}

// setEarly lets a Connecting connection carry early data on qc (see
// lifetime.early). c.mu must be held.
func (c *Connection) setEarly(qc *quic.Conn) {
	if c.lt.state != Connecting {
		return
	}
	c.lt.early.Store(qc)
	c.lt.earlyReady.Set()
}

// closeError maps the cause with which quic-go closed the connection to the
// connection's error, applying what only this package knows: that it closed
// the connection itself, that the handshake never completed, and that this
// side rejected the peer's certificate. c.mu must be held.
func (c *Connection) closeError(cause error) *qerr.ConnectionError {
	lt := &c.lt
	var e *qerr.ConnectionError
	if cause != nil {
		e = quicerr.Connection(cause)
	}
	if e == nil {
		e = &qerr.ConnectionError{Reason: qerr.ConnectionClosed}
	}
	switch {
	case lt.own.reason != 0:
		e.Reason, e.Code, e.Message, e.Remote = lt.own.reason, lt.own.code, "", false
		if lt.own.cause != nil {
			e.Message = lt.own.cause.Error()
			e.Err = errors.Join(lt.own.cause, e.Err)
		}
	case lt.state < Connected && (e.Reason == qerr.IdleTimeout || e.Reason == qerr.HandshakeTimeout):
		// quic-go's own handshake timer fired (its deadline is the
		// library's budget, plus a margin): say it as the library would.
		e.Reason = qerr.HandshakeTimeout
		hte := &handshakeTimeoutError{addr: c.remote, budget: c.cfg.Settings.handshakeTimeout(),
			answered: c.isServer || lt.cert != nil || lt.certErr != nil}
		e.Message = hte.Error()
		e.Err = errors.Join(hte, e.Err)
	case e.Remote && e.Reason == qerr.ShutdownByTransport:
		if ce := c.rejectedByPeer(e.Code); ce != nil {
			e.Message += ": " + ce.Reason
			e.Err = errors.Join(ce, e.Err)
		}
	}
	if lt.certErr == nil && c.isServer && !e.Remote {
		// A server's handshakes report a rejected client certificate only
		// in their error (accept.go): the credential's verdict is in it.
		if ce, ok := errors.AsType[*qerr.CertificateError](cause); ok {
			c.peerRejected(ce)
			c.opts.logger.Warn("quicconn: peer certificate rejected", "registration", c.reg.name, "server", true, "err", ce)
		}
	}
	if lt.certErr != nil {
		e.Message = lt.certErr.Error()
		e.Err = errors.Join(lt.certErr, e.Err)
	}
	return e
}

// TLS alerts (RFC 8446, section 6.2) with which a peer rejects a
// certificate, as QUIC carries them: CRYPTO_ERROR 0x100 + alert.
const (
	alertHandshakeFailure       = 0x100 + 40
	alertBadCertificate         = 0x100 + 42
	alertUnsupportedCertificate = 0x100 + 43
	alertCertificateRevoked     = 0x100 + 44
	alertCertificateExpired     = 0x100 + 45
	alertCertificateUnknown     = 0x100 + 46
	alertUnknownCA              = 0x100 + 48
	alertCertificateRequired    = 0x100 + 116
)

// rejectedByPeer returns the *errors.CertificateError that the peer's
// transport close with code says, or nil when code says nothing about this
// side's certificate. c.mu must be held.
func (c *Connection) rejectedByPeer(code uint64) *qerr.CertificateError {
	switch code {
	case alertCertificateRequired:
		if c.cred.Identity() == "" {
			return &qerr.CertificateError{Remote: true, Reason: "the server requires a client certificate, and this side's credential has none (give it one with certverify.GenerateSelfSigned, LoadKeyPair or SetCertificate)"}
		}
		return &qerr.CertificateError{Remote: true, Reason: "the peer requires a certificate (certificate_required)"}
	case alertBadCertificate, alertUnsupportedCertificate, alertCertificateRevoked,
		alertCertificateExpired, alertCertificateUnknown, alertUnknownCA:
		return &qerr.CertificateError{Remote: true, Reason: quic.TransportErrorCode(code).Message()}
	case alertHandshakeFailure:
		// Some stacks (rustls) reject a client certificate with the generic
		// handshake_failure; only a client that presented one can tell.
		if c.lt.presented {
			return &qerr.CertificateError{Remote: true, Reason: "handshake_failure after this side presented its certificate"}
		}
	}
	return nil
}

// closedBy moves c to Shutdown, if it is not there yet, with the error that
// cause maps to, and returns the connection's error. c.mu must be held.
func (c *Connection) closedBy(cause error) *qerr.ConnectionError {
	if c.lt.state < Shutdown {
		c.setState(Shutdown, c.closeError(cause))
	}
	return c.lt.err
}

// setOwnReason records that this package is closing c for reason, with the
// application code code and cause as the reason phrase, unless a reason was
// recorded first. c.mu must be held.
func (c *Connection) setOwnReason(reason qerr.Reason, code uint64, cause error) {
	if c.lt.own.reason == 0 {
		c.lt.own.reason, c.lt.own.code, c.lt.own.cause = reason, code, cause
	}
}

// peerVerified records the peer's verified certificate and wakes those
// waiting for it. c.mu must be held.
func (c *Connection) peerVerified(cert *x509.Certificate, stopWatch func() bool) {
	c.lt.cert = cert
	c.lt.certHash = certverify.HashOf(cert.Raw)
	if c.lt.watchEnded {
		// finish has run: nobody would stop this watch.
		stopWatch()
	} else {
		c.lt.stopWatch = stopWatch
	}
	c.lt.certKnown.Set()
}

// peerRejected records why this side rejected the peer's certificate, for
// the connection's error; the first reason stays. c.mu must be held.
func (c *Connection) peerRejected(err error) {
	if c.lt.certErr == nil {
		c.lt.certErr = err
	}
}

// connLifetime is a Connection seen as the quicerr.Lifetime of its streams,
// so that ConnectionError is not a method of Connection's own.
type connLifetime Connection

// ConnectionError implements quicerr.Lifetime: a stream operation that
// found the connection gone learns the connection's error, which may be the
// first news of the close.
func (l *connLifetime) ConnectionError(cause error) *qerr.ConnectionError {
	c := (*Connection)(l)
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closedBy(cause)
}

func (c *Connection) lifetime() quicerr.Lifetime { return (*connLifetime)(c) }
