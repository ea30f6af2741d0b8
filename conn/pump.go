package conn

// The pump: quic-go's blocking API turned into the connection's events.
//
// It uses as few goroutines as an idle connection allows: the end of the
// connection is a context.AfterFunc on quic-go's context (a goroutine only
// once it has ended); a server connection's handshake — complete, or out of
// its budget — has a goroutine that exits with the handshake (and leaves
// the end to an Accept that waits for it); a close
// request runs CloseWithError, which waits for the close, in a goroutine of
// its own, which then handles the end in the AfterFunc's place; and, when
// datagrams are enabled, the bounded queue drains received datagrams in a
// goroutine of its own, so that drops are counted, once the application
// has not been in ReceiveDatagram to receive them itself for a millisecond
// (dgram.Queue.ReceiveFrom). A client's certificates arrive through the TLS
// callbacks, a server's with the end of its handshake (tls.go), and
// peer-opened streams stay in quic-go's own accept queues until asked for.
// Every one of these goroutines has exited when the connection
// reaches ShutdownComplete.

import (
	"context"
	"log/slog"
	"time"

	"github.com/quic-go/quic-go"
)

// run starts the pump for qc. A server connection passes its handshake
// deadline; a client's handshake is already complete (deadline is zero),
// and Start reports it Connected once it is confirmed.
func (c *Connection) run(qc *quic.Conn, deadline time.Time) {
	c.mu.Lock()
	if q := c.dgrams; q != nil {
		c.dgramPumpDone = make(chan struct{})
		q.ReceiveFrom(qc, c.dgramPumpDone)
	}
	if !deadline.IsZero() {
		c.goroutines.Go(func() { c.awaitHandshake(qc, deadline) })
	}
	c.stopEnd = context.AfterFunc(qc.Context(), func() { c.closed(qc) })
	c.mu.Unlock()
}

// handshakeComplete is the Connected event, with qc's state at the end of
// its handshake. A connection that quic-go has closed meanwhile, before
// closed ran, goes to Shutdown instead.
func (c *Connection) handshakeComplete(qc *quic.Conn, cs *quic.ConnectionState) {
	c.mu.Lock()
	if qc.Context().Err() != nil {
		c.closedBy(context.Cause(qc.Context()))
	}
	if c.lt.state == Connecting {
		c.alpn = cs.TLS.NegotiatedProtocol
		c.resumed = cs.TLS.DidResume
		c.lt.used0RTT = cs.Used0RTT
		c.dgramLocal = cs.SupportsDatagrams.Local
		c.dgramRemote = cs.SupportsDatagrams.Remote
		c.setState(Connected, nil)
	}
	c.mu.Unlock()
	if c.opts.logger.Enabled(context.Background(), slog.LevelDebug) { // the arguments allocate even when disabled
		c.opts.logger.Debug("quicconn: connected", "registration", c.reg.name, "server", c.isServer,
			"remote", qc.RemoteAddr(), "alpn", cs.TLS.NegotiatedProtocol)
	}
}

// closed handles the end of qc: the Shutdown and ShutdownComplete events,
// in that order.
func (c *Connection) closed(qc *quic.Conn) {
	c.mu.Lock()
	c.closedBy(context.Cause(qc.Context()))
	c.closeSeen = true // no close goroutine starts after this
	drained := c.dgramPumpDone
	c.mu.Unlock()
	// Every goroutine of the connection has exited at ShutdownComplete.
	c.goroutines.Wait()
	if drained != nil {
		<-drained
	}
	c.finish()
}

// finish releases what the connection holds and marks it ShutdownComplete.
func (c *Connection) finish() {
	c.mu.Lock()
	tr, old, err, stopWatch := c.tr, c.oldTransports, c.lt.err, c.lt.stopWatch
	c.tr, c.oldTransports = nil, nil
	c.lt.watchEnded = true
	c.mu.Unlock()
	if stopWatch != nil {
		stopWatch()
	}
	if tr != nil {
		c.reg.releaseTransport(tr)
	}
	for _, t := range old {
		c.reg.releaseTransport(t)
	}
	if c.opts.logger.Enabled(context.Background(), slog.LevelDebug) {
		c.opts.logger.Debug("quicconn: shutdown complete", "registration", c.reg.name, "server", c.isServer, "err", err)
	}
	// Out of the registration first: whoever sees ShutdownComplete (such
	// as Registration.Close) must find the registration without it.
	c.reg.removeConn(c)
	c.mu.Lock()
	c.setState(ShutdownComplete, nil)
	c.mu.Unlock()
}
