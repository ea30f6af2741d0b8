package conn

// The Connection type and its accessors.

import (
	"context"
	"crypto/x509"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quicconn/quicconn/certverify"
	"github.com/quicconn/quicconn/dgram"
	qerr "github.com/quicconn/quicconn/errors"
)

// Connection is one QUIC connection, with its lifecycle made explicit (see
// State): the Connection API of a Rust wrapper over msquic, on quic-go. A
// client Connection is made by New and started by Start; a server
// Connection comes from Listener.Accept. Every blocking method takes a
// context and returns when it ends, and returns when the connection shuts
// down.
//
// The methods of a Connection are safe for concurrent use.
type Connection struct {
	reg      *Registration
	cred     *certverify.Credential
	opts     options
	isServer bool
	created  time.Time

	streamsOpened   atomic.Uint64
	streamsAccepted atomic.Uint64
	datagramsSent   atomic.Uint64

	mu sync.Mutex
	lt lifetime // guarded by mu; see lifetime.go

	// Guarded by mu. Each is set once, before the state that uses it is
	// published: cfg, dgrams and dgram* before Connected (or, for a server,
	// Connecting), so that the lock-free paths read them after loading
	// lt.connected.
	cfg         *Configuration
	tr          *transport
	qc          *quic.Conn
	remote      net.Addr
	dialCancel  context.CancelCauseFunc
	alpn        string
	resumed     bool
	dgramLocal  bool
	dgramRemote bool
	dgrams      *dgram.Queue
	// oldTransports are the sockets a migrated client left, which quic-go
	// keeps the connection registered on until it ends.
	oldTransports              []*transport
	pathsValidated, migrations uint64

	// The pump's goroutines, each waited for at ShutdownComplete: in
	// goroutines, a close request (close.go), a server's handshake watch
	// (awaitHandshake) and a 0-RTT client's (awaitEarlyHandshake), each
	// added under mu; dgramPumpDone is closed once the datagram queue's
	// goroutines have exited. closeStarted is set when a close goroutine
	// has been started, closeSeen once closed has run, after which none
	// is started. stopEnd stops the AfterFunc that runs closed at the end
	// of qc (run), for a close goroutine that runs it itself.
	goroutines              sync.WaitGroup
	closeStarted, closeSeen bool
	stopEnd                 func() bool
	handshakeSeen           bool // a server's serverHandshakeComplete has begun
	// accepting counts the Accepts waiting for a server's handshake, to
	// which awaitHandshake leaves its end.
	accepting     int
	dgramPumpDone chan struct{}
}

func newConnection(reg *Registration, cred *certverify.Credential, o options) *Connection {
	return &Connection{
		reg:  reg,
		cred: cred,
		opts: o,
	}
}

// State returns the connection's current state.
func (c *Connection) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lt.state
}

// Err returns the connection's *errors.ConnectionError once it is shutting
// down, and nil before. The error matches errors.ErrConnectionLost, and it
// is the same value that stream and datagram operations on the connection
// wrap once it is gone.
func (c *Connection) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lt.err == nil {
		return nil
	}
	return c.lt.err
}

// WatchShutdown returns a channel that is closed when the connection reaches
// ShutdownComplete. It may be called in any state.
func (c *Connection) WatchShutdown() <-chan struct{} { return c.lt.done.Done() }

// LocalAddr returns the address of the connection's socket. It fails with
// errors.ErrNotStarted in state Open.
func (c *Connection) LocalAddr() (net.Addr, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.tr != nil:
		return c.tr.tr.Conn.LocalAddr(), nil
	case c.lt.state == Open:
		return nil, qerr.Op("local address", qerr.ErrNotStarted)
	}
	return nil, qerr.Op("local address", c.lt.err)
}

// RemoteAddr returns the peer's address. On a server it follows a client
// that migrated, or whose address a NAT rebinding changed, once the new path
// is validated. It fails with errors.ErrNotStarted in state Open.
func (c *Connection) RemoteAddr() (net.Addr, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.isServer && c.qc != nil:
		// A quic-go server changes its peer's address atomically; a client's
		// RemoteAddr reads a field that a path switch replaces without a
		// lock, so clients answer from c.remote (their peer does not move).
		return c.qc.RemoteAddr(), nil
	case c.remote != nil:
		return c.remote, nil
	case c.lt.state == Open:
		return nil, qerr.Op("remote address", qerr.ErrNotStarted)
	}
	return nil, qerr.Op("remote address", c.lt.err)
}

// RemoteCertificate returns the peer's leaf certificate once the credential
// has verified it, or nil.
func (c *Connection) RemoteCertificate() *x509.Certificate {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lt.cert
}

// RemoteIdentity returns the hash of the peer's leaf certificate once the
// credential has verified it: the certverify.CertHash that peers pin with
// TrustHashes and that the peer's Credential.Identity reports. It reports
// false until then, and for a peer that presented no certificate.
func (c *Connection) RemoteIdentity() (certverify.CertHash, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lt.certHash, c.lt.cert != nil
}

// ReceiveRemoteCertificate waits until the peer's certificate has been
// received and accepted by the credential's trust policy, which happens
// before the handshake completes, and returns it. At that point the peer has
// not yet proven that it holds the certificate's key (TLS checks its
// CertificateVerify signature next): treat the peer as authenticated only
// once the connection is Connected. It fails with the connection's error
// when the connection shuts down without a verified certificate, and with
// errors.ErrNoCertificate when the handshake completed without one (a server
// that does not ask clients for certificates).
func (c *Connection) ReceiveRemoteCertificate(ctx context.Context) (*x509.Certificate, error) {
	const op = "receive remote certificate"
	if err := c.lt.certKnown.Wait(ctx); err != nil {
		return nil, qerr.Op(op, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.lt.cert != nil:
		return c.lt.cert, nil
	case c.lt.err == nil:
		return nil, qerr.Op(op, qerr.ErrNoCertificate)
	}
	return nil, qerr.Op(op, c.lt.err)
}

// NegotiatedALPN returns the application protocol agreed in the handshake,
// or "" before the connection is Connected.
func (c *Connection) NegotiatedALPN() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.alpn
}
