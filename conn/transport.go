package conn

// Sockets: quic-go Transports shared, with a reference count, by the
// connections and listeners of one Registration that use the same socket.

import (
	"net"

	"github.com/quic-go/quic-go"
	qerr "github.com/quicconn/quicconn/errors"
)

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

// retainTransport adds a reference to t, for a server connection accepted
// on it.
func (r *Registration) retainTransport(t *transport) {
	r.mu.Lock()
	t.refs++
	r.mu.Unlock()
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

// setListener makes l the listener on t, unless t has one.
func (r *Registration) setListener(t *transport, l *Listener) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if t.listener != nil {
		return false
	}
	t.listener = l
	return true
}

// clearListener undoes setListener.
func (r *Registration) clearListener(t *transport, l *Listener) {
	r.mu.Lock()
	if t.listener == l {
		t.listener = nil
	}
	r.mu.Unlock()
}

// listenerOf returns the listener on t, or nil.
func (r *Registration) listenerOf(t *transport) *Listener {
	r.mu.Lock()
	defer r.mu.Unlock()
	return t.listener
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
