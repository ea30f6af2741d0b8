package conn

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quicconn/quicconn/dgram"
	qerr "github.com/quicconn/quicconn/errors"
	"github.com/quicconn/quicconn/internal/quicerr"
)

// The pump turns quic-go's blocking API into the connection's events, with
// as few goroutines as an idle connection allows: the end of the connection
// is a context.AfterFunc on quic-go's context (a goroutine only once it has
// ended); a server connection's handshake — complete, or out of its budget —
// has a goroutine that exits with the handshake; a close request runs
// CloseWithError, which waits for the close, in a goroutine of its own; and,
// when datagrams are enabled, one goroutine drains received datagrams into
// the bounded queue so that drops are counted. Certificates arrive through
// the TLS callbacks (hookTLS) and peer-opened streams stay in quic-go's own
// accept queues until asked for. Every one of these goroutines has exited
// when the connection reaches ShutdownComplete.

// run starts the pump for qc. A server connection passes its handshake
// deadline; a client's handshake is already complete.
func (c *Connection) run(qc *quic.Conn, deadline *time.Time) {
	c.mu.Lock()
	q := c.dgrams
	if q != nil {
		c.dgramPumpDone = make(chan struct{})
	}
	if deadline != nil {
		c.handshakeWatchDone = make(chan struct{})
	}
	c.mu.Unlock()
	if q != nil {
		go c.drainDatagrams(qc, q)
	}
	if deadline == nil {
		c.handshakeComplete(qc)
	} else {
		go c.awaitHandshake(qc, *deadline)
	}
	context.AfterFunc(qc.Context(), func() { c.closed(qc) })
}

// awaitHandshake turns the end of a server connection's handshake into its
// event: complete, out of budget, or failed (which closed sees).
func (c *Connection) awaitHandshake(qc *quic.Conn, deadline time.Time) {
	defer close(c.handshakeWatchDone)
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-qc.HandshakeComplete():
		c.handshakeComplete(qc)
	case <-t.C:
		c.abort(qerr.HandshakeTimeout, errHandshakeTimeout)
	case <-qc.Context().Done():
	}
}

// drainDatagrams moves received datagrams from quic-go's small internal
// queue, which drops silently, to q, which counts what it drops.
func (c *Connection) drainDatagrams(qc *quic.Conn, q *dgram.Queue) {
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
		c.connected.Store(qc)
		closeOnce(c.handshakeDone)
		closeOnce(c.certDone)
	}
	c.mu.Unlock()
	if c.opts.logger.Enabled(context.Background(), slog.LevelDebug) { // the arguments allocate even when disabled
		c.opts.logger.Debug("quicconn: connected", "registration", c.reg.name, "server", c.isServer,
			"remote", qc.RemoteAddr(), "alpn", cs.TLS.NegotiatedProtocol)
	}
}

// closed handles the end of qc: the seed's ShutdownInitiated and
// ShutdownComplete events, in that order.
func (c *Connection) closed(qc *quic.Conn) {
	c.mu.Lock()
	c.noteClosedLocked(context.Cause(qc.Context()))
	c.closeSeen = true // no close goroutine starts after this
	q, drained, closing, hs := c.dgrams, c.dgramPumpDone, c.closeDone, c.handshakeWatchDone
	if !c.closeStarted {
		closing = nil
	}
	c.mu.Unlock()
	if q != nil {
		q.Close(c.Err())
	}
	// Every goroutine of the connection has exited at ShutdownComplete.
	for _, done := range []chan struct{}{drained, closing, hs} {
		if done != nil {
			<-done
		}
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
	c.connected.Store(nil)
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
	tr, err := c.tr, c.err
	c.tr = nil
	c.mu.Unlock()
	if tr != nil {
		c.reg.releaseTransport(tr)
	}
	if c.opts.logger.Enabled(context.Background(), slog.LevelDebug) {
		c.opts.logger.Debug("quicconn: shutdown complete", "registration", c.reg.name, "server", c.isServer, "err", err)
	}
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
