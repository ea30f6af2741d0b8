package conn

// A client connection: New, Start and the dial.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quicconn/quicconn/certverify"
	"github.com/quicconn/quicconn/dgram"
	qerr "github.com/quicconn/quicconn/errors"
	"github.com/quicconn/quicconn/internal/gate"
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
	return c.start(ctx, cfg, host, port, false)
}

// StartEarly is Start for a client that wants to send before the handshake
// completes: when cfg.Settings.Allow0RTT is set and the Registration holds
// a session ticket from this server that allows early data, StartEarly
// returns as soon as the 0-RTT keys are ready, a round trip before Start
// would. The connection is then still Connecting, yet OpenOutboundStream,
// OpenSendStream and SendDatagram work as when Connected; it becomes
// Connected when the handshake completes, and Used0RTT then says whether
// the server took the early data. Otherwise StartEarly is Start.
//
// Early data can be replayed: an attacker who recorded it can send it to
// the server again, in a connection of its own, and the server cannot tell
// (RFC 9001, section 9.2). Send early only what is safe to process twice —
// idempotent requests such as reads, subscriptions or a hello — never a
// payment, a vote, or anything that changes state; wait for Connected for
// those. When the server refuses the early data (its ticket keys or
// settings changed since the ticket, say after a restart), everything sent
// early fails with an error matching errors.Err0RTTRejected, and the same
// Connection goes on over 1-RTT: open new streams once it is Connected.
func (c *Connection) StartEarly(ctx context.Context, cfg *Configuration, host string, port uint16) error {
	return c.start(ctx, cfg, host, port, true)
}

// Used0RTT reports whether the server accepted the early data that this
// client sent after StartEarly. It is false until the connection is
// Connected, on a server, and when no early data was attempted.
func (c *Connection) Used0RTT() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lt.used0RTT
}

func (c *Connection) start(ctx context.Context, cfg *Configuration, host string, port uint16, early bool) error {
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
	confirmed := new(gate.Event)
	sc := &sessionCache{confirmed: confirmed}
	if !cfg.Settings.DisableResumption {
		sc.store, sc.key = c.reg.sessions, sessionKey(addr.String(), c.cred.Identity())
	}
	tlsConf.ClientSessionCache = sc
	qconf := cfg.Settings.quicConfig(&c.opts)
	qconf.TokenStore = confirmingTokens{confirmed}
	// The budget cancels dialCtx rather than a context of its own: quic-go
	// keeps the dial's context for the connection's, with all it holds.
	budget := cfg.Settings.handshakeTimeout()
	timer := time.AfterFunc(budget, func() { cancel(&handshakeTimeoutError{addr: addr, budget: budget}) })
	var qc *quic.Conn
	if early && cfg.Settings.Allow0RTT {
		qc, err = tr.tr.DialEarly(dialCtx, addr, tlsConf, qconf)
	} else {
		qc, err = tr.tr.Dial(dialCtx, addr, tlsConf, qconf)
	}
	timer.Stop()
	if err != nil {
		cause := context.Cause(dialCtx)
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
		c.closeOwnLocked()
	}
	inEarly := !isClosed(qc.HandshakeComplete())
	if inEarly {
		cs := qc.ConnectionState()
		c.dgramLocal = cs.SupportsDatagrams.Local
		c.dgramRemote = cs.SupportsDatagrams.Remote
		c.setEarly(qc)
		c.goroutines.Go(func() { c.awaitEarlyHandshake(qc, confirmed) })
	}
	c.mu.Unlock()
	c.run(qc, time.Time{})
	if inEarly {
		return nil
	}
	if err := c.awaitConfirmation(ctx, qc, confirmed); err != nil {
		c.abort(qerr.ConnectionClosed, 0, err)
		return qerr.Op(op, err)
	}
	cs := qc.ConnectionState()
	c.handshakeComplete(qc, &cs)
	return c.waitHandshake(ctx, op)
}

// awaitEarlyHandshake turns the end of a 0-RTT client's handshake into the
// Connected event. When the server refused the early data, quic-go has
// failed the early streams with Err0RTTRejected and refuses new ones until
// NextConnection switches the connection to fresh stream maps, which it
// does here, so that the same Connection goes on.
func (c *Connection) awaitEarlyHandshake(qc *quic.Conn, confirmed *gate.Event) {
	select {
	case <-qc.HandshakeComplete():
	case <-qc.Context().Done():
		return
	}
	if !qc.ConnectionState().Used0RTT {
		if _, err := qc.NextConnection(qc.Context()); err != nil {
			return // closed: the pump reports it
		}
	}
	c.awaitConfirmation(qc.Context(), qc, confirmed)
	cs := qc.ConnectionState()
	c.handshakeComplete(qc, &cs)
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// minConfirmationWait bounds from below how long a client waits for the
// handshake's confirmation before it reports Connected anyway.
const minConfirmationWait = 25 * time.Millisecond

// awaitConfirmation waits, for a client whose certificate the server asked
// for, until the server has confirmed the handshake (RFC 9001, section
// 4.1.2), so that a server that rejects the certificate makes Start fail
// rather than succeed and then lose the connection. TLS 1.3 completes the
// client's handshake a round trip before the server has checked the
// client's certificate.
//
// quic-go does not report confirmation, so this waits for what a server
// sends once it has accepted the client: a session ticket (TLS
// NewSessionTicket) or an address validation token (NEW_TOKEN), which
// quic-go servers send with HANDSHAKE_DONE; both arrive through callbacks
// quic-go calls anyway, at no cost per packet. A rejection closes qc first.
// A server that sends neither is waited for at most three smoothed RTTs
// (and at least minConfirmationWait), and then taken as confirmed. It
// returns ctx's cause when ctx ends first.
func (c *Connection) awaitConfirmation(ctx context.Context, qc *quic.Conn, confirmed *gate.Event) error {
	c.mu.Lock()
	needed := c.lt.certRequested && !c.cfg.Settings.SkipHandshakeConfirmation
	c.mu.Unlock()
	if !needed {
		return nil
	}
	// One wait for the event, ended by the bound or by the close as well.
	wctx, cancel := context.WithTimeout(ctx, max(3*qc.ConnectionStats().SmoothedRTT, minConfirmationWait))
	defer cancel()
	stop := context.AfterFunc(qc.Context(), cancel)
	defer stop()
	if confirmed.Wait(wctx) != nil && ctx.Err() != nil {
		return context.Cause(ctx)
	}
	// Confirmed; or not confirmed in time; or closed, which closed reports.
	return nil
}

// confirmingTokens is a client's quic.TokenStore: a NEW_TOKEN frame, which
// a server sends only once the handshake is confirmed, confirms it.
type confirmingTokens struct {
	confirmed *gate.Event
}

func (confirmingTokens) Pop(string) *quic.ClientToken { return nil }

func (ct confirmingTokens) Put(string, *quic.ClientToken) { ct.confirmed.Set() }

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
		c.setOwnReason(reason, 0, cause)
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
