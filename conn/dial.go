package conn

// A client connection: New, Start and the dial.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/quicconn/quicconn/certverify"
	"github.com/quicconn/quicconn/dgram"
	qerr "github.com/quicconn/quicconn/errors"
)

// New returns a client Connection in state Open. It holds no socket and no
// goroutine until Start. cred is the connection's own identity and the
// policy it verifies the server with.
func New(reg *Registration, cred *certverify.Credential, opts ...Option) (*Connection, error) {
	if reg == nil {
		return nil, qerr.Op("new", &qerr.ConfigError{Field: "Registration", Reason: "is nil"})
	}
	if cred == nil {
		return nil, qerr.Op("new", &qerr.ConfigError{Field: "Credential", Reason: "is nil: give the connection an identity, e.g. from certverify.GenerateSelfSigned"})
	}
	if reg.isClosed() {
		return nil, qerr.Op("new", errRegistrationClosed)
	}
	return newConnection(reg, cred, newOptions(opts)), nil
}

// Start connects to host:port with cfg and waits until the connection is
// Connected, ctx ends or the connection fails. host is a name or an IP
// literal; it is also the TLS server name checked when the credential
// verifies chains to Roots.
//
// Called on a Connecting connection, Start waits for the handshake begun by
// the first call; on a Connected one it returns nil at once; on one that has
// shut down it returns the connection's error. Cancelling ctx abandons the
// handshake: the connection then shuts down with reason ConnectionClosed.
func (c *Connection) Start(ctx context.Context, cfg *Configuration, host string, port uint16) error {
	const op = "start"
	c.mu.Lock()
	switch c.lt.state {
	case Open:
	case Connecting:
		c.mu.Unlock()
		return c.waitHandshake(ctx, op)
	case Connected:
		c.mu.Unlock()
		return nil
	default:
		err := c.lt.err
		c.mu.Unlock()
		return qerr.Op(op, err)
	}
	if err := checkTarget(cfg, host, port); err != nil {
		c.mu.Unlock()
		return qerr.Op(op, err)
	}
	c.cfg = cfg
	c.setState(Connecting, nil)
	if cfg.Settings.DatagramReceiveEnabled {
		c.dgrams = dgram.NewQueue(cfg.Settings.datagramQueueLen())
	}
	dialCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	c.dialCancel = cancel
	c.mu.Unlock()

	if err := c.reg.addConn(c); err != nil {
		c.fail(qerr.ConnectionClosed, err, nil)
		return qerr.Op(op, err)
	}
	tr, err := c.reg.acquireTransport(&c.opts)
	if err != nil {
		c.fail(qerr.ConnectionClosed, err, nil)
		return qerr.Op(op, err)
	}
	c.mu.Lock()
	c.tr = tr
	c.mu.Unlock()

	addr, err := resolve(dialCtx, host, port)
	if err != nil {
		c.fail(qerr.ConnectionClosed, err, nil)
		return qerr.Op(op, err)
	}
	c.mu.Lock()
	c.remote = addr
	c.mu.Unlock()

	tlsConf := c.cred.ClientTLSConfig(host, cfg.ALPN)
	c.hookTLS(tlsConf)
	budget := cfg.Settings.handshakeTimeout()
	hctx, hcancel := context.WithTimeoutCause(dialCtx, budget, &handshakeTimeoutError{addr: addr, budget: budget})
	qc, err := tr.tr.Dial(hctx, addr, tlsConf, cfg.Settings.quicConfig(&c.opts))
	hcancel()
	if err != nil {
		cause := context.Cause(hctx)
		var hte *handshakeTimeoutError
		switch {
		case ctx.Err() != nil:
			cause = context.Cause(ctx)
			c.fail(qerr.ConnectionClosed, cause, err)
			return qerr.Op(op, cause)
		case errors.As(cause, &hte):
			// The server's certificate is the first thing it sends back.
			hte.answered = c.RemoteCertificate() != nil || c.certRejected()
			c.fail(qerr.HandshakeTimeout, cause, err)
		default:
			c.fail(0, nil, err)
		}
		return qerr.Op(op, c.Err())
	}

	c.mu.Lock()
	c.qc = qc
	c.dialCancel = nil
	if c.lt.own.reason != 0 {
		// Registration.Close raced with the end of the dial and found no
		// quic.Conn to close; close it now.
		c.closedBy(nil)
		c.requestCloseLocked(0, "quicconn: "+c.lt.own.cause.Error())
	}
	c.mu.Unlock()
	c.run(qc, time.Time{})
	return c.waitHandshake(ctx, op)
}

// checkTarget refuses, before any packet is sent, what cannot make a
// connection.
func checkTarget(cfg *Configuration, host string, port uint16) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	if host == "" {
		return &qerr.ConfigError{Field: "host", Reason: "is empty: give the server's name or IP address"}
	}
	if port == 0 {
		return &qerr.ConfigError{Field: "port", Reason: "is 0: give the port the server listens on"}
	}
	return nil
}

// handshakeTimeoutError is the cause with which this package ends a
// handshake that ran out of its budget.
type handshakeTimeoutError struct {
	addr   net.Addr
	budget time.Duration
	// answered is set when packets from the peer had arrived.
	answered bool
}

func (e *handshakeTimeoutError) Error() string {
	if e.answered {
		return fmt.Sprintf("handshake with %v did not complete within %v (Settings.HandshakeTimeout)", e.addr, e.budget)
	}
	return fmt.Sprintf("handshake with %v did not complete within %v (Settings.HandshakeTimeout): nothing answered; is a server listening there, and does the network pass UDP?", e.addr, e.budget)
}

// resolve turns host and port into a UDP address, looking the name up only
// when it is not an IP literal.
func resolve(ctx context.Context, host string, port uint16) (*net.UDPAddr, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		return net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, port)), nil
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, err
	}
	if len(ips) == 0 {
		return nil, &net.DNSError{Err: "no addresses", Name: host, IsNotFound: true}
	}
	return net.UDPAddrFromAddrPort(netip.AddrPortFrom(ips[0].Unmap(), port)), nil
}

// fail ends a client connection whose Start failed before a quic.Conn
// existed: there is no pump, so it goes straight to ShutdownComplete.
func (c *Connection) fail(reason qerr.Reason, cause, quicErr error) {
	c.mu.Lock()
	if reason != 0 {
		c.setOwnReason(reason, cause)
	}
	c.closedBy(quicErr)
	c.mu.Unlock()
	c.finish()
}

// waitHandshake waits until the connection is Connected or will never be,
// and reports the outcome for op. An outcome that is known wins over an
// ended context.
func (c *Connection) waitHandshake(ctx context.Context, op string) error {
	if err := c.lt.ready.Wait(ctx); err != nil {
		return qerr.Op(op, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lt.err == nil {
		return nil
	}
	return qerr.Op(op, c.lt.err)
}
