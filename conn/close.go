package conn

// Closing a connection: by the application (Shutdown, ShutdownAndWait) and
// by this package for reasons of its own (abort).

import (
	"context"

	"github.com/quic-go/quic-go"
	qerr "github.com/quicconn/quicconn/errors"
	"github.com/quicconn/quicconn/internal/quicerr"
)

// Shutdown starts closing a Connected connection with the application
// error code code and returns at once; Err then reports ShutdownByLocal.
// The peer sees ShutdownByPeer with the same code. Use WatchShutdown or
// ShutdownAndWait to wait for ShutdownComplete. Shutdown fails with
// errors.ErrNotStarted before the connection is Connected (cancel Start's
// context to abandon a handshake), with errors.ErrInvalidCode for a code
// above 2^62-1, and does nothing once the connection is shutting down.
func (c *Connection) Shutdown(code uint64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.shutdownLocked(code)
}

func (c *Connection) shutdownLocked(code uint64) error {
	if err := quicerr.CheckCode(code); err != nil {
		return qerr.Op("shutdown", err)
	}
	switch c.lt.state {
	case Open, Connecting:
		return qerr.Op("shutdown", qerr.ErrNotStarted)
	case Connected:
		c.lt.local = true
		c.setState(Shutdown, &qerr.ConnectionError{Reason: qerr.ShutdownByLocal, Code: code})
		c.requestCloseLocked(code, "")
	}
	return nil
}

// ShutdownAndWait shuts the connection down like Shutdown and waits for
// ShutdownComplete. On a Connecting connection it first waits for the
// handshake. It returns nil when this side shut the connection down, and the
// connection's error when the peer or the transport did.
func (c *Connection) ShutdownAndWait(ctx context.Context, code uint64) error {
	const op = "shutdown"
	c.mu.Lock()
	state := c.lt.state
	c.mu.Unlock()
	switch state {
	case Open:
		return qerr.Op(op, qerr.ErrNotStarted)
	case Connecting:
		if err := c.lt.ready.Wait(ctx); err != nil {
			return qerr.Op(op, err)
		}
	}
	c.mu.Lock()
	err := c.shutdownLocked(code)
	c.mu.Unlock()
	if err != nil {
		return err
	}
	if err := c.lt.done.Wait(ctx); err != nil {
		return qerr.Op(op, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lt.local {
		return nil
	}
	return qerr.Op(op, c.lt.err)
}

// closeOwnLocked closes qc, if there is one yet, for the reason recorded
// with setOwnReason. Without a quic.Conn the dial or attach that makes one
// does it. c.mu must be held.
func (c *Connection) closeOwnLocked() {
	if c.qc == nil {
		return
	}
	c.closedBy(nil)
	c.requestCloseLocked(c.lt.own.code, c.lt.own.cause.Error())
}

// requestCloseLocked closes the quic.Conn in a goroutine of its own, since
// CloseWithError waits for the connection to close; the first request wins.
// c.mu must be held.
func (c *Connection) requestCloseLocked(code uint64, msg string) {
	if c.closeStarted || c.closeSeen || c.qc == nil {
		return
	}
	c.closeStarted = true
	qc := c.qc
	if c.stopEnd != nil && c.stopEnd() {
		// The end of qc has not begun: this goroutine, which sees it
		// first, handles it too, rather than wake a goroutine of the
		// AfterFunc's own for it. It is not in c.goroutines, which closed
		// waits for, and it returns once closed has.
		go func() {
			qc.CloseWithError(quic.ApplicationErrorCode(code), msg)
			c.closed(qc)
		}()
		return
	}
	c.goroutines.Go(func() { qc.CloseWithError(quic.ApplicationErrorCode(code), msg) })
}

// abort closes the connection for a reason of this package's own, such as
// Registration.Close, whatever its state. The peer sees an application
// close with code and cause's text as the reason phrase. abort does not
// block.
func (c *Connection) abort(reason qerr.Reason, code uint64, cause error) {
	c.mu.Lock()
	if c.lt.state >= Shutdown {
		c.mu.Unlock()
		return
	}
	c.setOwnReason(reason, code, cause)
	cancel := c.dialCancel
	c.closeOwnLocked()
	c.mu.Unlock()
	if cancel != nil {
		cancel(cause)
	}
}
