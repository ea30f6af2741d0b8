package conn

import (
	"context"
	"errors"
	"net"
	"sync"

	"github.com/quic-go/quic-go"
	qerr "github.com/quicconn/quicconn/errors"
)

// errRegistrationClosed is what New, Start and Listen report once the
// Registration is closed. It matches net.ErrClosed.
var errRegistrationClosed = &registrationClosedError{}

type registrationClosedError struct{}

func (*registrationClosedError) Error() string { return "registration closed" }
func (*registrationClosedError) Unwrap() error { return net.ErrClosed }

// A Registration owns a set of connections and listeners: the seed's msquic
// registration. It shares UDP sockets between those of its connections and
// listeners that bind the same local address, and it closes them all at
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
	idle       chan struct{} // closed while nothing is live; replaced when something becomes live
}

// NewRegistration returns an empty Registration. name labels its log
// records.
func NewRegistration(name string) *Registration {
	idle := make(chan struct{})
	close(idle)
	return &Registration{
		name:       name,
		conns:      make(map[*Connection]struct{}),
		listeners:  make(map[*Listener]struct{}),
		transports: make(map[any]*transport),
		idle:       idle,
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
	for _, c := range conns {
		c.abort(qerr.ConnectionClosed, errRegistrationClosed)
	}
	for _, c := range conns {
		<-c.done
	}
	return nil
}

// WaitIdle blocks until the Registration owns no live connection, listener
// or stream, or ctx ends. A connection is live from Start (or
// Listener.Accept) until ShutdownComplete, a listener until Close; the
// streams of a connection end with it at the latest.
func (r *Registration) WaitIdle(ctx context.Context) error {
	for {
		r.mu.Lock()
		idle := r.idle
		r.mu.Unlock()
		select {
		case <-idle:
			// The registration may have become busy again between the close
			// of idle and now; look once more under the lock.
			r.mu.Lock()
			ok := len(r.conns) == 0 && len(r.listeners) == 0
			r.mu.Unlock()
			if ok {
				return nil
			}
		case <-ctx.Done():
			return qerr.Op("wait idle", context.Cause(ctx))
		}
	}
}

// addLive records a live connection or listener. It fails once the
// registration is closed.
func (r *Registration) addConn(c *Connection) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return errRegistrationClosed
	}
	r.busyLocked()
	r.conns[c] = struct{}{}
	return nil
}

func (r *Registration) removeConn(c *Connection) {
	r.mu.Lock()
	delete(r.conns, c)
	r.maybeIdleLocked()
	r.mu.Unlock()
}

func (r *Registration) addListener(l *Listener) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return errRegistrationClosed
	}
	r.busyLocked()
	r.listeners[l] = struct{}{}
	return nil
}

func (r *Registration) removeListener(l *Listener) {
	r.mu.Lock()
	delete(r.listeners, l)
	r.maybeIdleLocked()
	r.mu.Unlock()
}

func (r *Registration) busyLocked() {
	if len(r.conns) == 0 && len(r.listeners) == 0 {
		r.idle = make(chan struct{})
	}
}

func (r *Registration) maybeIdleLocked() {
	if len(r.conns) == 0 && len(r.listeners) == 0 {
		select {
		case <-r.idle:
		default:
			close(r.idle)
		}
	}
}

// A transport is a quic.Transport shared by the connections and listeners
// of one Registration that use the same socket, with a reference count: the
// socket is closed when the last user releases it.
type transport struct {
	reg *Registration
	key any // nil for a socket of one connection's own
	tr  *quic.Transport

	ownsConn bool // the socket was opened here, so it is closed here

	// Guarded by reg.mu.
	refs     int
	listener *Listener // the listener on this socket, if any
}

// acquireTransport returns the transport for o's socket, creating it on
// first use. The socket is opened outside the registration's lock, so that
// concurrent Starts do not queue behind each other's system calls.
func (r *Registration) acquireTransport(o *options) (*transport, error) {
	key, err := transportKey(o)
	if err != nil {
		return nil, err
	}
	if t, err := r.sharedTransport(key); t != nil || err != nil {
		return t, err
	}
	pc := o.pc
	if pc == nil {
		laddr := &net.UDPAddr{}
		if o.localAddr != "" {
			if laddr, err = net.ResolveUDPAddr("udp", o.localAddr); err != nil {
				return nil, &qerr.ConfigError{Field: "WithLocalAddr", Reason: err.Error()}
			}
		}
		udp, err := net.ListenUDP("udp", laddr)
		if err != nil {
			return nil, err
		}
		pc = udp
	}
	t := &transport{reg: r, key: key, refs: 1, ownsConn: o.pc == nil}
	t.tr = &quic.Transport{Conn: pc, ConnContext: t.connContext}
	if t.ownsConn {
		// Register the socket under the address it got, so that a listener
		// on port 0 can be joined by connections that bind the port it got.
		t.key = "udp " + pc.LocalAddr().String()
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		t.close()
		return nil, errRegistrationClosed
	}
	if other, ok := r.transports[t.key]; ok && !t.ownsConn {
		// Another caller set up the same packet conn meanwhile: use theirs.
		other.refs++
		r.mu.Unlock()
		return other, nil
	}
	r.transports[t.key] = t
	r.mu.Unlock()
	return t, nil
}

// sharedTransport returns the live transport registered under key, with a
// new reference, or nil when there is none.
func (r *Registration) sharedTransport(key any) (*transport, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, errRegistrationClosed
	}
	if key == nil {
		return nil, nil
	}
	t, ok := r.transports[key]
	if !ok {
		return nil, nil
	}
	t.refs++
	return t, nil
}

// releaseTransport drops one reference to t and closes it with the last.
func (r *Registration) releaseTransport(t *transport) {
	r.mu.Lock()
	t.refs--
	last := t.refs == 0
	if last && r.transports[t.key] == t {
		delete(r.transports, t.key)
	}
	r.mu.Unlock()
	if last {
		t.close()
	}
}

// transportKey says which socket o asks for: the packet conn it gives, or
// the local address it binds with a fixed port. Sockets on port 0 are never
// shared: each asks for a port of its own.
func transportKey(o *options) (any, error) {
	if o.pc != nil {
		return o.pc, nil
	}
	if o.localAddr == "" {
		return nil, nil
	}
	a, err := net.ResolveUDPAddr("udp", o.localAddr)
	if err != nil {
		return nil, &qerr.ConfigError{Field: "WithLocalAddr", Reason: err.Error()}
	}
	if a.Port == 0 {
		return nil, nil
	}
	return "udp " + a.String(), nil
}

func (t *transport) close() {
	t.tr.Close()
	if t.ownsConn {
		// quic.Transport closes only the sockets it made itself.
		t.tr.Conn.Close()
	}
}

// connContext is quic-go's hook for every connection the listener on t
// accepts: it makes the Connection that Listener.Accept will hand out, so
// that the TLS callbacks of the handshake can find it.
func (t *transport) connContext(ctx context.Context, _ *quic.ClientInfo) (context.Context, error) {
	t.reg.mu.Lock()
	l := t.listener
	t.reg.mu.Unlock()
	if l == nil {
		return nil, errors.New("no listener")
	}
	c := newServerConnection(l)
	return context.WithValue(ctx, connKey{}, c), nil
}

type connKey struct{}
