package conn

// Datagrams (RFC 9221): sending, the bounded receive queue, and the size
// limit.

import (
	"context"
	"errors"

	"github.com/quic-go/quic-go"
	qerr "github.com/quicconn/quicconn/errors"
)

// datagramProbe is longer than any QUIC datagram can be, so that
// quic.Conn.SendDatagram rejects it and reports the current maximum without
// sending or copying anything.
var datagramProbe [1 << 16]byte

// SendDatagram sends b as one unreliable QUIC datagram (RFC 9221). It fails
// with an error matching errors.ErrDatagramDenied when this side's Settings
// do not enable datagrams or the peer's do not (the error says which), and
// with a *errors.DatagramTooBigError when b is larger than MaxDatagramSize.
// It may block briefly while quic-go's send queue is full. b may be reused
// as soon as SendDatagram returns.
func (c *Connection) SendDatagram(b []byte) error {
	const op = "send datagram"
	qc := c.lt.connected.Load()
	if qc == nil && !c.isServer {
		qc = c.lt.early.Load()
	}
	if qc == nil {
		// Not Connected when loaded; the state, read under the lock, says
		// whether it is not yet or no longer (or became Connected since).
		c.mu.Lock()
		state, err := c.lt.state, c.lt.err
		qc = c.lt.connected.Load()
		if qc == nil && !c.isServer {
			qc = c.lt.early.Load()
		}
		c.mu.Unlock()
		switch {
		case qc != nil:
		case state < Connected:
			return qerr.Op(op, qerr.ErrNotStarted)
		case state > Connected:
			return qerr.Op(op, err)
		}
	}
	switch {
	case !c.dgramLocal:
		return qerr.Op(op, errDatagramsNotEnabled)
	case !c.dgramRemote:
		return qerr.Op(op, errDatagramsDeniedByPeer)
	}
	if err := qc.SendDatagram(b); err != nil {
		if tooBig, ok := errors.AsType[*quic.DatagramTooLargeError](err); ok {
			return qerr.Op(op, &qerr.DatagramTooBigError{Max: int(tooBig.MaxDatagramPayloadSize)})
		}
		return c.opError(context.Background(), op, err)
	}
	c.datagramsSent.Add(1)
	return nil
}

// The two reasons for ErrDatagramDenied.
var (
	errDatagramsNotEnabled   = &deniedError{"datagrams are not enabled in this side's Settings (DatagramReceiveEnabled)"}
	errDatagramsDeniedByPeer = &deniedError{"the peer did not enable datagrams"}
)

type deniedError struct{ why string }

func (e *deniedError) Error() string        { return qerr.ErrDatagramDenied.Error() + ": " + e.why }
func (e *deniedError) Is(target error) bool { return target == qerr.ErrDatagramDenied }

// ReceiveDatagram returns the oldest queued datagram from the peer, waiting
// for one if none is queued. It needs Settings.DatagramReceiveEnabled.
// The queue holds Settings.DatagramQueueLen datagrams; when it is full the
// oldest is dropped and counted in Stats.DatagramsDropped. Datagrams are
// queued only while the application does not keep up: a ReceiveDatagram
// that finds the queue empty receives the next one from quic-go itself.
func (c *Connection) ReceiveDatagram(ctx context.Context) ([]byte, error) {
	const op = "receive datagram"
	if _, err := c.ready(ctx, op, false); err != nil {
		return nil, err
	}
	q := c.dgrams // set before the connection was ready
	if q == nil {
		return nil, qerr.Op(op, errDatagramsNotEnabled)
	}
	b, err := q.Get(ctx)
	if err != nil {
		return nil, qerr.Op(op, err)
	}
	return b, nil
}

// MaxDatagramSize returns the largest payload SendDatagram accepts at this
// moment; a payload of exactly this size is accepted. It is 0 before the
// connection is Connected, after it shuts down, and when either side has not
// enabled datagrams. It can shrink when the path MTU does.
func (c *Connection) MaxDatagramSize() int {
	qc := c.lt.connected.Load()
	if qc == nil || !c.dgramLocal || !c.dgramRemote {
		return 0
	}
	if tooBig, ok := errors.AsType[*quic.DatagramTooLargeError](qc.SendDatagram(datagramProbe[:])); ok {
		return int(tooBig.MaxDatagramPayloadSize)
	}
	return 0
}
