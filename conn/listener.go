package conn

import (
	"context"
	"crypto/tls"
	"net"
	"sync"

	"github.com/quic-go/quic-go"
	"github.com/quicconn/quicconn/certverify"
	qerr "github.com/quicconn/quicconn/errors"
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

	closeOnce sync.Once
}

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
	if err := reg.addListener(l); err != nil {
		ln.Close()
		l.release()
		return nil, qerr.Op(op, err)
	}
	return l, nil
}

// Accept returns the next connection whose handshake has begun. It is in
// state Connecting or already Connected; call its Accept method to wait for
// the handshake. Accept fails with an error matching net.ErrClosed once the
// listener is closed.
//
// quic-go holds at most 32 connections that Accept has not taken yet and
// refuses further handshakes (CONNECTION_REFUSED) while that queue is full,
// so a server expecting bursts of clients should call Accept in a loop of its
// own and hand each connection to another goroutine at once.
func (l *Listener) Accept(ctx context.Context) (*Connection, error) {
	const op = "accept"
	for {
		qc, err := l.ln.Accept(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil, qerr.Op(op, context.Cause(ctx))
			}
			return nil, qerr.Op(op, err)
		}
		c, ok := qc.Context().Value(connKey{}).(*Connection)
		if !ok {
			qc.CloseWithError(0, "")
			continue
		}
		if err := c.attach(qc, l.tr); err != nil {
			qc.CloseWithError(0, err.Error())
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
		l.ln.Close()
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
