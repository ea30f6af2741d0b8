package conn

// A server: the Listener, and a server connection built from the moment
// quic-go sees its first packet to the end of its handshake.

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quicconn/quicconn/certverify"
	"github.com/quicconn/quicconn/dgram"
	qerr "github.com/quicconn/quicconn/errors"
	"github.com/quicconn/quicconn/internal/gate"
)

// A Listener accepts QUIC connections on a UDP socket. Connections are
// handed out as soon as their handshake begins, in state Connecting (the
// listener is built on quic-go's ListenEarly); Connection.Accept waits for
// the handshake to complete.
//
// The methods of a Listener are safe for concurrent use.
type Listener struct {
	reg  *Registration
	cfg  *Configuration
	cred *certverify.Credential
	opts options
	tr   *transport
	ln   *quic.EarlyListener

	// backlog holds connections taken from quic-go's accept queue, which
	// refuses handshakes once 32 wait, until Accept hands them out. It is
	// closed with net.ErrClosed by Close, or with quic-go's error when its
	// listener fails on its own.
	backlog    *gate.Queue[*quic.Conn]
	acceptDone chan struct{} // closed when every acceptLoop has returned
	closeOnce  sync.Once
}

// Backlog is how many connections whose handshake has begun a Listener holds
// for Accept. Past it, new handshakes wait in quic-go's own queue of 32 (and
// with the listener's 16 goroutines that take from it), and are refused
// (CONNECTION_REFUSED) once that is full too.
const Backlog = 256

// errListenerClosed is what Accept returns after Close.
var errListenerClosed = net.ErrClosed

// Listen starts accepting connections on addr ("host:port"; port 0 picks a
// free port) with cfg's ALPN and settings. cred is the server's identity and
// the policy it verifies clients with, according to cred.ClientAuth; it must
// hold a certificate.
//
// With WithPacketConn, the listener uses that packet conn and addr must be
// "" or the conn's own address.
func Listen(reg *Registration, addr string, cfg *Configuration, cred *certverify.Credential, opts ...Option) (*Listener, error) {
	const op = "listen"
	if reg == nil {
		return nil, qerr.Op(op, &qerr.ConfigError{Field: "Registration", Reason: "is nil"})
	}
	if cred == nil {
		return nil, qerr.Op(op, &qerr.ConfigError{Field: "Credential", Reason: "is nil: a server needs an identity, e.g. from certverify.GenerateSelfSigned"})
	}
	if cred.Identity() == "" {
		return nil, qerr.Op(op, &qerr.ConfigError{Field: "Credential.Certificate", Reason: "is empty: a server must present a certificate (certverify.GenerateSelfSigned or LoadKeyPair make one)"})
	}
	if err := cfg.validate(); err != nil {
		return nil, qerr.Op(op, err)
	}
	o := newOptions(opts)
	if o.pc != nil {
		if addr != "" && addr != o.pc.LocalAddr().String() {
			return nil, qerr.Op(op, &qerr.ConfigError{Field: "addr", Reason: "must be empty or the packet conn's address " + o.pc.LocalAddr().String() + ", is " + addr})
		}
	} else {
		o.localAddr = addr
	}
	l := &Listener{reg: reg, cfg: cfg, cred: cred, opts: o}
	tr, err := reg.acquireTransport(&o)
	if err != nil {
		return nil, qerr.Op(op, err)
	}
	if !reg.setListener(tr, l) {
		reg.releaseTransport(tr)
		return nil, qerr.Op(op, &qerr.ConfigError{Field: "addr", Reason: "the registration already listens on " + addr})
	}
	l.tr = tr

	// Every handshake of the listener uses this one config, as raw quic-go
	// does: the credential's VerifyConnection decides, and the connection
	// learns the outcome afterwards, from the handshake's end: the verified
	// certificate from its connection state (serverVerified), a
	// rejection from its error (closeError). A config per handshake, with
	// callbacks that reach its Connection, would cost three tls.Config
	// copies per handshake, since quic-go copies what GetConfigForClient
	// returns once more.
	tlsConf := cred.ServerTLSConfig(cfg.ALPN)
	if o.keyLog != nil {
		tlsConf.KeyLogWriter = o.keyLog
	}
	// Without tickets, clients confirm the handshake by NEW_TOKEN.
	tlsConf.SessionTicketsDisabled = cfg.Settings.DisableResumption
	ln, err := tr.tr.ListenEarly(tlsConf, cfg.Settings.quicConfig(&o))
	if err != nil {
		l.release()
		return nil, qerr.Op(op, err)
	}
	l.ln = ln
	l.backlog = gate.NewQueue[*quic.Conn](Backlog)
	l.acceptDone = make(chan struct{})
	if err := reg.addListener(l); err != nil {
		ln.Close()
		l.release()
		return nil, qerr.Op(op, err)
	}
	// Registration.Close may already be closing l; it waits for these loops.
	var loops sync.WaitGroup
	for range acceptors {
		loops.Go(l.acceptLoop)
	}
	go func() {
		loops.Wait()
		close(l.acceptDone)
	}()
	return l, nil
}

// acceptors is how many goroutines of a Listener take connections from
// quic-go's accept queue. quic-go refuses a handshake (CONNECTION_REFUSED)
// when that queue of 32 is full, even after the client's handshake
// completed; a goroutine waiting in its Accept takes a connection straight
// from the handshake, outside the 32. Measured with a storm of 1,000
// handshakes on 2 busy cores, one goroutine let quic-go refuse 5 to 229 of
// them in three runs, 16 refused none.
const acceptors = 16

// acceptLoop moves connections from quic-go's accept queue to the backlog
// as soon as they appear, so that a burst of clients is not refused while
// the application is busy. It returns when the listener is closed.
func (l *Listener) acceptLoop() {
	for {
		qc, err := l.ln.Accept(context.Background())
		if err != nil {
			l.backlog.Close(err)
			return
		}
		if l.backlog.Put(context.Background(), qc) != nil {
			refuse(qc)
		}
	}
}

// refuse closes a connection that was never handed out.
func refuse(qc *quic.Conn) {
	qc.CloseWithError(0, "listener closed")
}

// Accept returns the next connection whose handshake has begun. It is in
// state Connecting or already Connected; call its Accept method to wait for
// the handshake. Accept fails with an error matching net.ErrClosed once the
// listener is closed.
//
// The listener holds up to Backlog such connections for Accept; a burst of
// clients larger than that, while Accept is not called, sees handshakes
// refused (CONNECTION_REFUSED).
func (l *Listener) Accept(ctx context.Context) (*Connection, error) {
	const op = "accept"
	for {
		qc, err := l.backlog.Get(ctx)
		if err != nil {
			return nil, qerr.Op(op, err)
		}
		c, ok := qc.Context().Value(connKey{}).(*Connection)
		if !ok {
			refuse(qc)
			continue
		}
		if err := c.attach(qc, l.tr); err != nil {
			qc.CloseWithError(0, err.Error())
			return nil, qerr.Op(op, err)
		}
		return c, nil
	}
}

// Addr returns the listener's local address.
func (l *Listener) Addr() net.Addr { return l.ln.Addr() }

// Close stops accepting connections and unblocks Accept. Connections
// already accepted go on; the socket is closed when the last of them ends.
// Connections nobody accepted are refused now rather than left to time out.
func (l *Listener) Close() error {
	l.closeOnce.Do(func() {
		l.backlog.Close(errListenerClosed)
		l.ln.Close()
		<-l.acceptDone
		for _, qc := range l.backlog.Drain() {
			refuse(qc)
		}
		l.release()
		l.reg.removeListener(l)
	})
	return nil
}

func (l *Listener) release() {
	l.reg.clearListener(l.tr, l)
	l.reg.releaseTransport(l.tr)
}

// connKey is the context key under which a handshake's context carries the
// Connection it will become.
type connKey struct{}

// connContext is quic-go's hook for every connection that a listener on t
// accepts: it makes the Connection that Listener.Accept will hand out, so
// that the TLS callbacks of the handshake can find it.
func (t *transport) connContext(ctx context.Context, _ *quic.ClientInfo) (context.Context, error) {
	l := t.reg.listenerOf(t)
	if l == nil {
		return nil, errors.New("no listener")
	}
	c := newConnection(l.reg, l.cred, l.opts)
	c.isServer = true
	c.created = time.Now()
	c.cfg = l.cfg
	if l.cfg.Settings.DatagramReceiveEnabled {
		c.dgrams = dgram.NewQueue(l.cfg.Settings.datagramQueueLen())
	}
	c.setState(Connecting, nil)
	return context.WithValue(ctx, connKey{}, c), nil
}

// attach gives a server connection its quic.Conn and starts its pump.
func (c *Connection) attach(qc *quic.Conn, tr *transport) error {
	if err := c.reg.addConn(c); err != nil {
		return err
	}
	c.reg.retainTransport(tr)
	c.mu.Lock()
	c.qc = qc
	c.tr = tr
	c.remote = qc.RemoteAddr()
	if c.cfg.Settings.Allow0RTT {
		c.setEarly(qc) // streams and datagrams that came as 0-RTT
	}
	if c.lt.own.reason != 0 {
		// Closed (its trust revoked) while it waited in the backlog.
		c.closeOwnLocked()
	}
	c.mu.Unlock()
	c.run(qc, c.created.Add(c.cfg.Settings.handshakeTimeout()))
	return nil
}

// Accept waits until the handshake of a server-side connection completes,
// ctx ends or the connection fails. The connection's error, returned when
// the handshake fails, matches errors.ErrBadCertificate when this side
// rejected the client's certificate.
func (c *Connection) Accept(ctx context.Context) error {
	c.mu.Lock()
	qc, connecting := c.qc, c.lt.state == Connecting
	if qc != nil && connecting {
		c.accepting++
	}
	c.mu.Unlock()
	if qc != nil && connecting {
		// The end of the handshake is taken here, where the application
		// waits for it, rather than in awaitHandshake's goroutine, which
		// leaves it to a waiting Accept and keeps the budget: the
		// application goes on without a hand-off, and a client sends its
		// first request as soon as its own handshake is complete.
		select {
		case <-qc.HandshakeComplete():
		case <-c.lt.ready.Done():
		case <-ctx.Done():
		}
		c.mu.Lock()
		c.accepting--
		c.mu.Unlock()
		// After the count went down: awaitHandshake may have left the
		// end to this Accept even if ctx ended first.
		if isClosed(qc.HandshakeComplete()) {
			c.serverHandshakeComplete(qc)
		}
	}
	return c.waitHandshake(ctx, "accept")
}

// awaitHandshake turns the end of a server connection's handshake into its
// event: complete, out of budget, or failed (which closed sees).
func (c *Connection) awaitHandshake(qc *quic.Conn, deadline time.Time) {
	// A handshake that completed while the connection waited in the
	// backlog wins over a budget that ran out meanwhile.
	select {
	case <-qc.HandshakeComplete():
		c.handshakeEnded(qc)
		return
	default:
	}
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-qc.HandshakeComplete():
		c.handshakeEnded(qc)
	case <-t.C:
		c.abort(qerr.HandshakeTimeout, 0, &handshakeTimeoutError{addr: qc.RemoteAddr(), budget: c.cfg.Settings.handshakeTimeout(), answered: true})
	case <-qc.Context().Done():
	}
}

// handshakeEnded is awaitHandshake's part in the end of the handshake: it
// leaves it to an Accept that waits for it and wakes at the same moment.
func (c *Connection) handshakeEnded(qc *quic.Conn) {
	c.mu.Lock()
	accepting := c.accepting > 0
	c.mu.Unlock()
	if !accepting {
		c.serverHandshakeComplete(qc)
	}
}

// serverHandshakeComplete is the Connected event of a server connection,
// once the client's certificate is stored and watched. Accept and
// awaitHandshake both call it; the first call does it. Accept is not one
// of the goroutines that closed waits for, so its call may come after
// finish: handshakeComplete then finds the state past Connecting, and
// peerVerified stops the watch at once.
func (c *Connection) serverHandshakeComplete(qc *quic.Conn) {
	c.mu.Lock()
	seen := c.handshakeSeen
	c.handshakeSeen = true
	c.mu.Unlock()
	if seen {
		return
	}
	if testHookServerHandshake != nil {
		testHookServerHandshake(c)
	}
	// One copy of the connection state for both: it is large.
	cs := qc.ConnectionState()
	if c.serverVerified(&cs) {
		c.handshakeComplete(qc, &cs)
	}
}

// testHookServerHandshake, when set by a test, runs when a server
// connection's handshake has completed, before its peer is stored.
var testHookServerHandshake func(*Connection)
