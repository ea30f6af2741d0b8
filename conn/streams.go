package conn

// Streams: opening and accepting them once the connection is ready.

import (
	"context"
	"errors"
	"strconv"

	"github.com/quic-go/quic-go"
	qerr "github.com/quicconn/quicconn/errors"
	"github.com/quicconn/quicconn/internal/quicerr"
	"github.com/quicconn/quicconn/stream"
)

// ready waits until the connection is Connected and returns its quic.Conn,
// or reports why it never will be: ErrNotStarted in state Open, the
// connection's error once it is shutting down. An operation that opens
// (opening, true) may proceed early on a client with 0-RTT keys, one that
// accepts on a server with Allow0RTT (see lifetime.early).
func (c *Connection) ready(ctx context.Context, op string, opening bool) (*quic.Conn, error) {
	if qc := c.lt.connected.Load(); qc != nil {
		return qc, nil
	}
	early := opening != c.isServer
	if early {
		if qc := c.lt.early.Load(); qc != nil {
			return qc, nil
		}
	}
	c.mu.Lock()
	state := c.lt.state
	c.mu.Unlock()
	if state == Open {
		return nil, qerr.Op(op, qerr.ErrNotStarted)
	}
	ev := &c.lt.ready
	if early {
		ev = &c.lt.earlyReady
	}
	if err := ev.Wait(ctx); err != nil {
		return nil, qerr.Op(op, err)
	}
	if qc := c.lt.connected.Load(); qc != nil {
		return qc, nil
	}
	if qc := c.lt.early.Load(); qc != nil && early {
		return qc, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return nil, qerr.Op(op, c.lt.err)
}

// opError maps an error from a quic.Conn operation: the context's cause
// when ctx ended, the connection's error when it is closed.
func (c *Connection) opError(ctx context.Context, op string, err error) error {
	if ctx.Err() != nil {
		return qerr.Op(op, context.Cause(ctx))
	}
	if quicerr.IsConnectionError(err) {
		return qerr.Op(op, c.lifetime().ConnectionError(err))
	}
	return qerr.Op(op, qerr.Internal(err))
}

func (c *Connection) openError(ctx context.Context, op string, err error) error {
	if _, ok := errors.AsType[*quic.StreamLimitReachedError](err); ok {
		return qerr.Op(op, qerr.ErrLimitReached)
	}
	if errors.Is(err, quic.Err0RTTRejected) {
		return qerr.Op(op, quicerr.Rejected0RTT(err))
	}
	return c.opError(ctx, op, err)
}

// OpenOutboundStream opens a stream of type t. In state Connecting it waits
// for Connected. At the peer's stream limit it waits for credit, or fails
// at once with errors.ErrLimitReached when failOnBlocked is set. A
// unidirectional stream is returned as a *stream.Stream whose read side
// reports errors.ErrClosed.
func (c *Connection) OpenOutboundStream(ctx context.Context, t stream.Type, failOnBlocked bool) (*stream.Stream, error) {
	const op = "open stream"
	if t != stream.Bidirectional && t != stream.Unidirectional {
		return nil, qerr.Op(op, &qerr.ConfigError{Field: "stream.Type", Reason: "unknown type " + strconv.Itoa(int(t))})
	}
	qc, err := c.ready(ctx, op, true)
	if err != nil {
		return nil, err
	}
	var s *stream.Stream
	if t == stream.Bidirectional {
		var qs *quic.Stream
		if failOnBlocked {
			qs, err = qc.OpenStream()
		} else {
			qs, err = qc.OpenStreamSync(ctx)
		}
		if err == nil {
			s = stream.NewStream(qs)
		}
	} else {
		var qs *quic.SendStream
		if failOnBlocked {
			qs, err = qc.OpenUniStream()
		} else {
			qs, err = qc.OpenUniStreamSync(ctx)
		}
		if err == nil {
			s = stream.NewSendOnlyStream(qs)
		}
	}
	if err != nil {
		return nil, c.openError(ctx, op, err)
	}
	quicerr.BindStream(s, c.lifetime())
	c.streamsOpened.Add(1)
	return s, nil
}

// OpenSendStream opens a unidirectional message stream: each Send writes one
// length-prefixed message, up to Settings.MaxMessageSize bytes. It waits for
// stream credit like OpenOutboundStream.
func (c *Connection) OpenSendStream(ctx context.Context) (*stream.SendStream, error) {
	const op = "open send stream"
	qc, err := c.ready(ctx, op, true)
	if err != nil {
		return nil, err
	}
	qs, err := qc.OpenUniStreamSync(ctx)
	if err != nil {
		return nil, c.openError(ctx, op, err)
	}
	s := stream.NewSendStream(qs, c.cfg.Settings.maxMessageSize())
	quicerr.BindStream(s, c.lifetime())
	c.streamsOpened.Add(1)
	return s, nil
}

// AcceptInboundStream returns the next bidirectional stream the peer
// opened, waiting for one if none is queued.
func (c *Connection) AcceptInboundStream(ctx context.Context) (*stream.Stream, error) {
	const op = "accept stream"
	qc, err := c.ready(ctx, op, false)
	if err != nil {
		return nil, err
	}
	qs, err := qc.AcceptStream(ctx)
	if err != nil {
		return nil, c.opError(ctx, op, err)
	}
	s := stream.NewStream(qs)
	quicerr.BindStream(s, c.lifetime())
	c.streamsAccepted.Add(1)
	return s, nil
}

// AcceptInboundUniStream returns the next unidirectional stream the peer
// opened, waiting for one if none is queued. Wrap it in a
// stream.MessageReader to read a peer's SendStream.
func (c *Connection) AcceptInboundUniStream(ctx context.Context) (*stream.ReadStream, error) {
	const op = "accept uni stream"
	qc, err := c.ready(ctx, op, false)
	if err != nil {
		return nil, err
	}
	qs, err := qc.AcceptUniStream(ctx)
	if err != nil {
		return nil, c.opError(ctx, op, err)
	}
	s := stream.NewReadStream(qs)
	quicerr.BindStream(s, c.lifetime())
	c.streamsAccepted.Add(1)
	return s, nil
}
