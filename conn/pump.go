package conn

import (
	"context"
	"crypto/tls"
	"errors"
	"time"

	"github.com/quic-go/quic-go"
	qerr "github.com/quicconn/quicconn/errors"
	"github.com/quicconn/quicconn/internal/quicerr"
)

// The pump turns quic-go's blocking API into the connection's events. It is
// one goroutine per connection for the lifecycle — handshake complete, the
// handshake budget, close requests, the connection's context ending — and,
// when datagrams are enabled, one more that drains received datagrams into
// the bounded queue so that drops are counted. Certificates arrive through
// the TLS callbacks (hookTLS) and peer-opened streams stay in quic-go's own
// accept queues until asked for. Both goroutines have exited when the
// connection reaches ShutdownComplete.

// run starts the pump for qc. A server connection passes its handshake
// deadline; a client's handshake is already complete.
func (c *Connection) run(qc *quic.Conn, deadline *time.Time) {
	c.mu.Lock()
	q := c.dgrams
	if q != nil {
		c.dgramPumpDone = make(chan struct{})
	}
	c.mu.Unlock()
	if q != nil {
		go c.drainDatagrams(qc, q)
	}
	var hs <-chan struct{}
	if deadline == nil {
		c.handshakeComplete(qc)
	} else {
		hs = qc.HandshakeComplete()
	}
	go c.pump(qc, hs, deadline)
}

func (c *Connection) pump(qc *quic.Conn, hs <-chan struct{}, deadline *time.Time) {
	var timeout <-chan time.Time
	if deadline != nil {
		t := time.NewTimer(time.Until(*deadline))
		defer t.Stop()
		timeout = t.C
	}
	closed := qc.Context().Done()
	for {
		select {
		case <-hs:
			hs, timeout = nil, nil
			c.handshakeComplete(qc)
		case <-timeout:
			timeout = nil
			c.abort(qerr.HandshakeTimeout, errHandshakeTimeout)
		case req := <-c.closeReq:
			// CloseWithError returns once the connection is closed, which
			// the next iteration then sees.
			qc.CloseWithError(quic.ApplicationErrorCode(req.code), req.msg)
		case <-closed:
			c.closed(qc)
			return
		}
	}
}

func (c *Connection) drainDatagrams(qc *quic.Conn, q interface{ Put([]byte) }) {
	defer close(c.dgramPumpDone)
	ctx := qc.Context()
	for {
		b, err := qc.ReceiveDatagram(ctx)
		if err != nil {
			return
		}
		q.Put(b)
	}
}

// handshakeComplete is the seed's Connected event.
func (c *Connection) handshakeComplete(qc *quic.Conn) {
	cs := qc.ConnectionState()
	c.mu.Lock()
	if c.state == Connecting {
		c.state = Connected
		c.alpn = cs.TLS.NegotiatedProtocol
		c.dgramLocal = cs.SupportsDatagrams.Local
		c.dgramRemote = cs.SupportsDatagrams.Remote
		closeOnce(c.handshakeDone)
		closeOnce(c.certDone)
	}
	c.mu.Unlock()
	c.opts.logger.Debug("quicconn: connected", "registration", c.reg.name, "server", c.isServer,
		"remote", qc.RemoteAddr(), "alpn", cs.TLS.NegotiatedProtocol)
}

// closed handles the end of qc: the seed's ShutdownInitiated and
// ShutdownComplete events, in that order.
func (c *Connection) closed(qc *quic.Conn) {
	c.mu.Lock()
	c.noteClosedLocked(context.Cause(qc.Context()))
	q, drained := c.dgrams, c.dgramPumpDone
	c.mu.Unlock()
	if q != nil {
		q.Close(c.Err())
	}
	if drained != nil {
		<-drained
	}
	stats := qc.ConnectionStats()
	c.mu.Lock()
	c.finalStats = stats
	c.mu.Unlock()
	c.finish()
}

// noteClosedLocked moves the connection to Shutdown with the error that
// cause maps to, unless an error was recorded first, and wakes every
// waiter for an event that can no longer happen.
func (c *Connection) noteClosedLocked(cause error) {
	if c.err == nil {
		c.err = c.mapCloseLocked(cause)
	}
	if c.state < Shutdown {
		c.state = Shutdown
	}
	closeOnce(c.handshakeDone)
	closeOnce(c.certDone)
}

// mapCloseLocked maps quic-go's close cause to the connection's error,
// applying what only this package knows: that it closed the connection
// itself (Registration.Close, the handshake budget), that the handshake
// never completed, and that a certificate was rejected.
func (c *Connection) mapCloseLocked(cause error) *qerr.ConnectionError {
	var e *qerr.ConnectionError
	if cause != nil {
		e = quicerr.Connection(cause)
	}
	if e == nil {
		e = &qerr.ConnectionError{Reason: qerr.ConnectionClosed}
	}
	switch {
	case c.closeReason != 0:
		e.Reason, e.Code, e.Message = c.closeReason, 0, ""
		if c.closeCause != nil {
			e.Message = c.closeCause.Error()
			e.Err = errors.Join(c.closeCause, e.Err)
		}
	case c.state < Connected && (e.Reason == qerr.IdleTimeout || e.Reason == qerr.HandshakeTimeout):
		e.Reason = qerr.HandshakeTimeout
	}
	if c.certErr != nil {
		e.Message = c.certErr.Error()
		e.Err = errors.Join(c.certErr, e.Err)
	}
	return e
}

// finish releases what the connection holds and marks it ShutdownComplete.
func (c *Connection) finish() {
	c.mu.Lock()
	tr := c.tr
	c.tr = nil
	c.mu.Unlock()
	if tr != nil {
		c.reg.releaseTransport(tr)
	}
	c.mu.Lock()
	err := c.err
	c.mu.Unlock()
	c.opts.logger.Debug("quicconn: shutdown complete", "registration", c.reg.name, "server", c.isServer, "err", err)
	c.mu.Lock()
	c.state = ShutdownComplete
	close(c.done)
	c.mu.Unlock()
	c.reg.removeConn(c)
}

func closeOnce(ch chan struct{}) {
	select {
	case <-ch:
	default:
		close(ch)
	}
}

// hookTLS makes conf report the peer certificate to c: accepted, it is
// stored and wakes ReceiveRemoteCertificate; rejected, the reason is kept
// for the connection's error. The credential's VerifyConnection, where
// certverify enforces its policy, still decides.
func (c *Connection) hookTLS(conf *tls.Config) {
	vc := conf.VerifyConnection
	conf.VerifyConnection = func(cs tls.ConnectionState) error {
		if vc != nil {
			if err := vc(cs); err != nil {
				c.setCertErr(err)
				return err
			}
		}
		if len(cs.PeerCertificates) > 0 {
			c.mu.Lock()
			c.cert = cs.PeerCertificates[0]
			closeOnce(c.certDone)
			c.mu.Unlock()
			if testHookCertVerified != nil {
				testHookCertVerified(c)
			}
		}
		return nil
	}
	if c.opts.keyLog != nil {
		conf.KeyLogWriter = c.opts.keyLog
	}
}

// testHookCertVerified, when set by a test, runs after a peer certificate
// was verified and stored, still inside the TLS handshake.
var testHookCertVerified func(*Connection)

func (c *Connection) setCertErr(err error) {
	c.mu.Lock()
	if c.certErr == nil {
		c.certErr = err
	}
	c.mu.Unlock()
	c.opts.logger.Warn("quicconn: peer certificate rejected", "registration", c.reg.name, "server", c.isServer, "err", err)
}
