package conn

// The Registration: the set of connections and listeners that one part of a
// program owns, closed together.

import (
	"context"
	"net"
	"sync"

	qerr "github.com/quicconn/quicconn/errors"
	"github.com/quicconn/quicconn/internal/gate"
)

// errRegistrationClosed is what New, Start and Listen report once the
// Registration is closed. It matches net.ErrClosed.
var errRegistrationClosed = &registrationClosedError{}

type registrationClosedError struct{}

func (*registrationClosedError) Error() string { return "registration closed" }
func (*registrationClosedError) Unwrap() error { return net.ErrClosed }

// A Registration owns a set of connections and listeners, as an msquic
// registration does. It shares UDP sockets between those of its connections
// and listeners that bind the same local address, and it closes them all at
// once. A program usually has one Registration per component.
//
// The methods of a Registration are safe for concurrent use.
type Registration struct {
	name string

	mu         sync.Mutex
	closed     bool
	conns      map[*Connection]struct{}
	listeners  map[*Listener]struct{}
	transports map[any]*transport
	sessions   *sessionStore // its clients' TLS session tickets
	// idle's condition is set while the registration owns no live
	// connection or listener; it is updated under mu with every change of
	// conns and listeners.
	idle gate.Gate
}

// NewRegistration returns an empty Registration. name labels its log
// records.
func NewRegistration(name string) *Registration {
	return &Registration{
		name:       name,
		conns:      make(map[*Connection]struct{}),
		listeners:  make(map[*Listener]struct{}),
		transports: make(map[any]*transport),
		sessions:   newSessionStore(),
		idle:       gate.New(true),
	}
}

// Name returns the name given to NewRegistration.
func (r *Registration) Name() string { return r.name }

// Close shuts down every connection and listener made with the Registration
// and waits until they have released their sockets and goroutines. Their
// connections end with reason ConnectionClosed. After Close, New, Start and
// Listen fail with an error matching net.ErrClosed. Close is idempotent.
func (r *Registration) Close() error {
	r.mu.Lock()
	r.closed = true
	lns := make([]*Listener, 0, len(r.listeners))
	for l := range r.listeners {
		lns = append(lns, l)
	}
	conns := make([]*Connection, 0, len(r.conns))
	for c := range r.conns {
		conns = append(conns, c)
	}
	r.mu.Unlock()

	for _, l := range lns {
		l.Close()
	}
	// Mark them all before closing any, so that a connection to a peer in
	// the same registration reports its own close, not the peer's.
	for _, c := range conns {
		c.mu.Lock()
		c.setOwnReason(qerr.ConnectionClosed, 0, errRegistrationClosed)
		c.mu.Unlock()
	}
	for _, c := range conns {
		c.abort(qerr.ConnectionClosed, 0, errRegistrationClosed)
	}
	for _, c := range conns {
		<-c.lt.done.Done()
	}
	return nil
}

// WaitIdle blocks until the Registration owns no live connection, listener
// or stream, or ctx ends. A connection is live from Start (or
// Listener.Accept) until ShutdownComplete, a listener until Close; the
// streams of a connection end with it at the latest. An idle registration
// wins over an ended context.
func (r *Registration) WaitIdle(ctx context.Context) error {
	if _, err := r.idle.WaitAndLock(ctx); err != nil {
		return qerr.Op("wait idle", err)
	}
	r.idle.Unlock(true)
	return nil
}

func (r *Registration) isClosed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed
}

// addConn records a live connection. It fails once the registration is
// closed.
func (r *Registration) addConn(c *Connection) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return errRegistrationClosed
	}
	r.conns[c] = struct{}{}
	r.publishIdleLocked()
	return nil
}

func (r *Registration) removeConn(c *Connection) {
	r.mu.Lock()
	delete(r.conns, c)
	r.publishIdleLocked()
	r.mu.Unlock()
}

func (r *Registration) addListener(l *Listener) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return errRegistrationClosed
	}
	r.listeners[l] = struct{}{}
	r.publishIdleLocked()
	return nil
}

func (r *Registration) removeListener(l *Listener) {
	r.mu.Lock()
	delete(r.listeners, l)
	r.publishIdleLocked()
	r.mu.Unlock()
}

// publishIdleLocked sets idle's condition from the live sets. WaitIdle
// holds idle only for an instant and never takes mu, so taking idle under
// mu cannot deadlock.
func (r *Registration) publishIdleLocked() {
	r.idle.Lock()
	r.idle.Unlock(len(r.conns) == 0 && len(r.listeners) == 0)
}
