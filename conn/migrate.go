package conn

// Migration: a client moving its connection to a new local socket.

import (
	"context"
	"errors"

	qerr "github.com/quicconn/quicconn/errors"
)

// ErrServerMigration is what Migrate returns on a server connection: in
// QUIC only the client moves (RFC 9000, section 9). A server follows a
// client that moved, or whose address a NAT changed, by itself.
var ErrServerMigration = errors.New("quicconn: a server connection cannot migrate; only clients move to a new socket")

// Migrate moves a Connected client connection to a new local socket: the
// packet conn of WithPacketConn, a socket bound with WithLocalAddr, or else
// a fresh UDP socket on a port of its own. It probes the new path (a
// PATH_CHALLENGE the server must answer), switches to it once validated,
// and returns; LocalAddr then reports the new socket, streams and datagrams
// in flight go on, and the server follows. Other options are ignored.
//
// The old socket stays open, and counted as the connection's in its
// Registration, until the connection reaches ShutdownComplete: quic-go
// keeps a migrated connection registered on it. If ctx ends before the new
// path is validated, Migrate returns ctx's cause and the connection stays on
// its old path.
//
// Migrate fails with errors.ErrNotStarted before the connection is
// Connected, with the connection's error once it is shutting down, and with
// ErrServerMigration on a server connection.
func (c *Connection) Migrate(ctx context.Context, opts ...Option) error {
	const op = "migrate"
	if c.isServer {
		return qerr.Op(op, ErrServerMigration)
	}
	c.mu.Lock()
	state, qc, lost := c.lt.state, c.qc, c.lt.err
	c.mu.Unlock()
	switch {
	case state < Connected:
		return qerr.Op(op, qerr.ErrNotStarted)
	case state > Connected:
		return qerr.Op(op, lost)
	}
	o := newOptions(opts)
	o.logger = c.opts.logger
	tr, err := c.reg.acquireTransport(&o)
	if err != nil {
		return qerr.Op(op, err)
	}
	path, err := qc.AddPath(tr.tr)
	if err != nil {
		c.reg.releaseTransport(tr)
		return qerr.Op(op, c.opError(context.Background(), op, err))
	}
	if err := path.Probe(ctx); err != nil {
		path.Close()
		c.reg.releaseTransport(tr)
		if ctx.Err() != nil {
			return qerr.Op(op, context.Cause(ctx))
		}
		return c.opError(context.Background(), op, err)
	}
	c.mu.Lock()
	c.pathsValidated++
	c.mu.Unlock()
	if err := path.Switch(); err != nil {
		path.Close()
		c.reg.releaseTransport(tr)
		return c.opError(context.Background(), op, err)
	}
	c.mu.Lock()
	if c.lt.state >= ShutdownComplete || c.tr == nil {
		// Ended meanwhile: finish has released the old sockets already.
		c.mu.Unlock()
		c.reg.releaseTransport(tr)
		return qerr.Op(op, c.Err())
	}
	c.oldTransports = append(c.oldTransports, c.tr)
	c.tr = tr
	c.migrations++
	c.mu.Unlock()
	return nil
}
