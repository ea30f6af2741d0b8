package conn

import (
	"context"
	"crypto/tls"
	"net"
	"sync"

	"github.com/quic-go/quic-go"
	"github.com/quicconn/quicconn/certverify"
	qerr "github.com/quicconn/quicconn/errors"
	"github.com/quicconn/quicconn/internal/quicerr"
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
	// refuses handshakes once 32 wait, until Accept hands them out.
	backlog    chan *quic.Conn
	closed     chan struct{} // closed by Close
	acceptDone chan struct{} // closed when acceptLoop has returned
	acceptErr  error         // why quic-go's Accept failed; set before acceptDone closes
	closeOnce  sync.Once
}

// Backlog is how many connections whose handshake has begun a Listener holds
// for Accept. Past it, new handshakes wait in quic-go's own queue of 32, and
// are refused (CONNECTION_REFUSED) once that is full too.
const Backlog = 256

// Listen starts accepting connections on addr ("host:port"; port 0 picks a
// free port) with cfg's ALPN and settings. cred is the server's identity and
// the policy it verifies clients with, according to cred.ClientAuth.
//
// With WithPacketConn, the listener uses that packet conn and addr must be
// "" or the conn's own address.
func Listen(reg *Registration, addr string, cfg *Configuration, cred *certverify.Credential, opts ...Option) (*Listener, error) {
	const op = "listen"
	if reg == nil {
		return nil, qerr.Op(op, &qerr.ConfigError{Field: "Registration", Reason: "is nil"})
	}
	if cred == nil {
		return nil, qerr.Op(op, &qerr.ConfigError{Field: "Credential", Reason: "is nil"})
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
	reg.mu.Lock()
	busy := tr.listener != nil
	if !busy {
		tr.listener = l
	}
	reg.mu.Unlock()
	if busy {
		reg.releaseTransport(tr)
		return nil, qerr.Op(op, &qerr.ConfigError{Field: "addr", Reason: "the registration already listens on " + addr})
	}
	l.tr = tr

	base := cred.ServerTLSConfig(cfg.ALPN)
	if o.keyLog != nil {
		base.KeyLogWriter = o.keyLog
	}
	tlsConf := &tls.Config{
		MinVersion: tls.VersionTLS13,
		// Each handshake gets a copy of base whose verification callbacks
		// report to its own Connection, found through the context that
		// transport.connContext gave the handshake.
		GetConfigForClient: func(chi *tls.ClientHelloInfo) (*tls.Config, error) {
			conf := base.Clone()
			if c, ok := chi.Context().Value(connKey{}).(*Connection); ok {
				c.hookTLS(conf)
			}
			return conf, nil
		},
	}
	ln, err := tr.tr.ListenEarly(tlsConf, cfg.Settings.quicConfig(&o))
	if err != nil {
		l.release()
		return nil, qerr.Op(op, err)
	}
	l.ln = ln
	l.backlog = make(chan *quic.Conn, Backlog)
	l.closed = make(chan struct{})
	l.acceptDone = make(chan struct{})
	if err := reg.addListener(l); err != nil {
		ln.Close()
		l.release()
		return nil, qerr.Op(op, err)
	}
	// Registration.Close may already be closing l; it waits for this loop.
	go l.acceptLoop()
	return l, nil
}

// acceptLoop moves connections from quic-go's accept queue to the backlog
// as soon as they appear, so that a burst of clients is not refused while
// the application is busy. It returns when the listener is closed.
func (l *Listener) acceptLoop() {
	defer close(l.acceptDone)
	for {
		qc, err := l.ln.Accept(context.Background())
		if err != nil {
			l.acceptErr = err
			return
		}
		select {
		case l.backlog <- qc:
		case <-l.closed:
			refuse(qc)
		}
	}
}

// refuse closes a connection that was never handed out.
func refuse(qc *quic.Conn) {
	qc.CloseWithError(0, quicerr.InternalClosePrefix+"listener closed")
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
		var qc *quic.Conn
		select {
		case qc = <-l.backlog:
		case <-l.closed:
			return nil, qerr.Op(op, net.ErrClosed)
		case <-l.acceptDone:
			// quic-go's listener failed on its own (its transport closed).
			select {
			case qc = <-l.backlog:
			default:
				return nil, qerr.Op(op, l.acceptErr)
			}
		case <-ctx.Done():
			return nil, qerr.Op(op, context.Cause(ctx))
		}
		c, ok := qc.Context().Value(connKey{}).(*Connection)
		if !ok {
			refuse(qc)
			continue
		}
		if err := c.attach(qc, l.tr); err != nil {
			qc.CloseWithError(0, quicerr.InternalClosePrefix+err.Error())
			return nil, qerr.Op(op, err)
		}
		return c, nil
	}
}

// attach gives a server connection its quic.Conn and starts its pump.
func (c *Connection) attach(qc *quic.Conn, tr *transport) error {
	if err := c.reg.addConn(c); err != nil {
		return err
	}
	c.reg.mu.Lock()
	tr.refs++
	c.reg.mu.Unlock()
	c.mu.Lock()
	c.qc = qc
	c.tr = tr
	c.mu.Unlock()
	deadline := c.created.Add(c.cfg.Settings.handshakeTimeout())
	c.run(qc, &deadline)
	return nil
}

// Addr returns the listener's local address.
func (l *Listener) Addr() net.Addr { return l.ln.Addr() }

// Close stops accepting connections and unblocks Accept. Connections
// already accepted go on; the socket is closed when the last of them ends.
func (l *Listener) Close() error {
	l.closeOnce.Do(func() {
		close(l.closed)
		l.ln.Close()
		<-l.acceptDone
		// Connections nobody accepted are refused now rather than left to
		// time out.
		for {
			select {
			case qc := <-l.backlog:
				refuse(qc)
				continue
			default:
			}
			break
		}
		l.release()
		l.reg.removeListener(l)
	})
	return nil
}

func (l *Listener) release() {
	l.reg.mu.Lock()
	if l.tr.listener == l {
		l.tr.listener = nil
	}
	l.reg.mu.Unlock()
	l.reg.releaseTransport(l.tr)
}
