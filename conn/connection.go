package conn

import (
	"context"
	"crypto/x509"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quicconn/quicconn/certverify"
	"github.com/quicconn/quicconn/dgram"
	qerr "github.com/quicconn/quicconn/errors"
	"github.com/quicconn/quicconn/internal/quicerr"
	"github.com/quicconn/quicconn/stream"
)

// Connection is one QUIC connection: the seed's msquic connection handle
// with its lifecycle made explicit (see State). A client Connection is made
// by New and started by Start; a server Connection comes from
// Listener.Accept. Every blocking method takes a context and returns when it
// ends, and returns when the connection shuts down.
//
// The methods of a Connection are safe for concurrent use.
type Connection struct {
	reg      *Registration
	cred     *certverify.Credential
	opts     options
	isServer bool
	created  time.Time

	// Each is closed once, when its event has happened; every waiter selects
	// on one of them and on its context, so no wake-up can be missed.
	handshakeDone chan struct{} // the state left Connecting (or Open, for a failed Start)
	certDone      chan struct{} // the peer certificate is known, or will never be
	done          chan struct{} // ShutdownComplete

	// connected is the quic.Conn while the state is Connected and nil
	// otherwise, so that the per-operation paths (opening and accepting
	// streams, datagrams) check the state without taking mu. The fields it
	// publishes (dgramLocal, dgramRemote, cfg) are set before it is stored
	// and not changed after.
	connected atomic.Pointer[quic.Conn]

	streamsOpened   atomic.Uint64
	streamsAccepted atomic.Uint64
	datagramsSent   atomic.Uint64

	mu            sync.Mutex
	state         State
	cfg           *Configuration
	tr            *transport
	qc            *quic.Conn
	remote        net.Addr
	dialCancel    context.CancelCauseFunc
	err           *qerr.ConnectionError
	localShutdown bool
	closeReason   qerr.Reason // set when this package closes the connection for a reason of its own
	closeCause    error
	cert          *x509.Certificate
	certErr       error
	alpn          string
	dgramLocal    bool
	dgramRemote   bool
	dgrams        *dgram.Queue
	dgramPumpDone chan struct{}
	finalStats    quic.ConnectionStats
	// closeStarted is set when a goroutine has been started to close qc,
	// which closes closeDone when CloseWithError returns; closeSeen once
	// closed has run, after which none is started.
	closeStarted, closeSeen bool
	closeDone               chan struct{}
	handshakeWatchDone      chan struct{} // awaitHandshake has exited; server side only
}

// errHandshakeTimeout is the cause with which this package ends a handshake
// that ran out of its budget.
var errHandshakeTimeout = errors.New("handshake did not complete in time")

// New returns a client Connection in state Open. It holds no socket and no
// goroutine until Start. cred is the connection's own identity and the
// policy it verifies the server with.
func New(reg *Registration, cred *certverify.Credential, opts ...Option) (*Connection, error) {
	if reg == nil {
		return nil, qerr.Op("new", &qerr.ConfigError{Field: "Registration", Reason: "is nil"})
	}
	if cred == nil {
		return nil, qerr.Op("new", &qerr.ConfigError{Field: "Credential", Reason: "is nil"})
	}
	reg.mu.Lock()
	closed := reg.closed
	reg.mu.Unlock()
	if closed {
		return nil, qerr.Op("new", errRegistrationClosed)
	}
	c := newConnection(reg, cred, newOptions(opts))
	return c, nil
}

func newConnection(reg *Registration, cred *certverify.Credential, o options) *Connection {
	return &Connection{
		reg:           reg,
		cred:          cred,
		opts:          o,
		closeDone:     make(chan struct{}),
		handshakeDone: make(chan struct{}),
		certDone:      make(chan struct{}),
		done:          make(chan struct{}),
	}
}

// newServerConnection makes the Connection for a handshake that l's
// socket has just begun. Listener.Accept hands it out.
func newServerConnection(l *Listener) *Connection {
	c := newConnection(l.reg, l.cred, l.opts)
	c.isServer = true
	c.created = time.Now()
	c.state = Connecting
	c.cfg = l.cfg
	if l.cfg.Settings.DatagramReceiveEnabled {
		c.dgrams = dgram.NewQueue(l.cfg.Settings.datagramQueueLen())
	}
	return c
}

// Start connects to host:port with cfg and waits until the handshake
// completes, ctx ends or the connection fails. host is a name or an IP
// literal; it is also the TLS server name checked when the credential
// verifies chains to Roots.
//
// Called on a Connecting connection, Start waits for the handshake begun by
// the first call; on a Connected one it returns nil at once; on one that has
// shut down it returns the connection's error. Cancelling ctx abandons the
// handshake: the connection then shuts down with reason ConnectionClosed.
//
// When the server rejects the client's certificate, the client may see
// Start return nil and then lose the connection within one round trip with
// the TLS bad_certificate alert (transport code 0x12a): TLS 1.3 completes
// the client's handshake before the server has checked the client's
// certificate. The rejecting side never reports success.
func (c *Connection) Start(ctx context.Context, cfg *Configuration, host string, port uint16) error {
	const op = "start"
	c.mu.Lock()
	switch c.state {
	case Open:
	case Connecting:
		c.mu.Unlock()
		return c.waitHandshake(ctx, op)
	case Connected:
		c.mu.Unlock()
		return nil
	default:
		err := c.err
		c.mu.Unlock()
		return qerr.Op(op, err)
	}
	if err := cfg.validate(); err != nil {
		c.mu.Unlock()
		return qerr.Op(op, err)
	}
	c.cfg = cfg
	c.state = Connecting
	if cfg.Settings.DatagramReceiveEnabled {
		c.dgrams = dgram.NewQueue(cfg.Settings.datagramQueueLen())
	}
	dialCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	c.dialCancel = cancel
	c.mu.Unlock()

	if err := c.reg.addConn(c); err != nil {
		c.fail(qerr.ConnectionClosed, err, nil)
		return qerr.Op(op, err)
	}
	tr, err := c.reg.acquireTransport(&c.opts)
	if err != nil {
		c.fail(qerr.ConnectionClosed, err, nil)
		return qerr.Op(op, err)
	}
	c.mu.Lock()
	c.tr = tr
	c.mu.Unlock()

	addr, err := resolve(dialCtx, host, port)
	if err != nil {
		c.fail(qerr.ConnectionClosed, err, nil)
		return qerr.Op(op, err)
	}
	c.mu.Lock()
	c.remote = addr
	c.mu.Unlock()

	tlsConf := c.cred.ClientTLSConfig(host, cfg.ALPN)
	c.hookTLS(tlsConf)
	hctx, hcancel := context.WithTimeoutCause(dialCtx, cfg.Settings.handshakeTimeout(), errHandshakeTimeout)
	qc, err := tr.tr.Dial(hctx, addr, tlsConf, cfg.Settings.quicConfig(&c.opts))
	hcancel()
	if err != nil {
		cause := context.Cause(hctx)
		switch {
		case ctx.Err() != nil:
			cause = context.Cause(ctx)
			c.fail(qerr.ConnectionClosed, cause, err)
			return qerr.Op(op, cause)
		case errors.Is(cause, errHandshakeTimeout):
			c.fail(qerr.HandshakeTimeout, cause, err)
		default:
			c.fail(0, nil, err)
		}
		return qerr.Op(op, c.Err())
	}

	c.mu.Lock()
	c.qc = qc
	c.dialCancel = nil
	aborted := c.closeReason != 0
	c.mu.Unlock()
	if aborted {
		// Registration.Close raced with the end of the dial and found no
		// quic.Conn to close; close it now.
		c.requestClose(0, "")
	}
	c.run(qc, nil)
	return c.waitHandshake(ctx, op)
}

// resolve turns host and port into a UDP address, looking the name up only
// when it is not an IP literal.
func resolve(ctx context.Context, host string, port uint16) (*net.UDPAddr, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		return net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, port)), nil
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, err
	}
	if len(ips) == 0 {
		return nil, &net.DNSError{Err: "no addresses", Name: host, IsNotFound: true}
	}
	return net.UDPAddrFromAddrPort(netip.AddrPortFrom(ips[0].Unmap(), port)), nil
}

// fail ends a client connection whose Start failed before a quic.Conn
// existed: there is no pump, so it goes straight to ShutdownComplete.
func (c *Connection) fail(reason qerr.Reason, cause, quicErr error) {
	c.mu.Lock()
	if reason != 0 && c.closeReason == 0 {
		c.closeReason, c.closeCause = reason, cause
	}
	c.noteClosedLocked(quicErr)
	c.mu.Unlock()
	c.finish()
}

// Accept waits until the handshake of a server-side connection completes,
// ctx ends or the connection fails. The connection's error, returned when
// the handshake fails, matches errors.ErrBadCertificate when this side
// rejected the client's certificate.
func (c *Connection) Accept(ctx context.Context) error {
	return c.waitHandshake(ctx, "accept")
}

// waitHandshake waits until the state leaves Connecting and reports the
// outcome for op.
func (c *Connection) waitHandshake(ctx context.Context, op string) error {
	select {
	case <-c.handshakeDone:
	case <-ctx.Done():
		return qerr.Op(op, context.Cause(ctx))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == Connected {
		return nil
	}
	return qerr.Op(op, c.err)
}

// State returns the connection's current state.
func (c *Connection) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// ready waits until the connection is Connected and returns its quic.Conn,
// or reports why it never will be: ErrNotStarted in state Open, the
// connection's error once it is shutting down.
func (c *Connection) ready(ctx context.Context, op string) (*quic.Conn, error) {
	if qc := c.connected.Load(); qc != nil {
		return qc, nil
	}
	c.mu.Lock()
	switch c.state {
	case Open:
		c.mu.Unlock()
		return nil, qerr.Op(op, qerr.ErrNotStarted)
	case Connecting:
		c.mu.Unlock()
		select {
		case <-c.handshakeDone:
		case <-ctx.Done():
			return nil, qerr.Op(op, context.Cause(ctx))
		}
		c.mu.Lock()
	}
	defer c.mu.Unlock()
	if c.state == Connected {
		return c.qc, nil
	}
	return nil, qerr.Op(op, c.err)
}

// opError maps an error from a quic.Conn operation: the context's cause
// when ctx ended, the connection's error when it is closed.
func (c *Connection) opError(ctx context.Context, op string, qc *quic.Conn, err error) error {
	if ctx != nil && ctx.Err() != nil {
		return qerr.Op(op, context.Cause(ctx))
	}
	if qc.Context().Err() != nil || quicerr.IsConnectionError(err) {
		return qerr.Op(op, c.closedErr(qc, err))
	}
	return qerr.Op(op, qerr.Internal(err))
}

// closedErr returns the connection's error, recording it if the pump has
// not done so yet: from qc's close cause, or from err, the close error
// that quic-go hands to blocked calls before it cancels qc's context.
func (c *Connection) closedErr(qc *quic.Conn, err error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		cause := context.Cause(qc.Context())
		if cause == nil {
			cause = err
		}
		c.err = c.mapCloseLocked(cause)
	}
	return c.err
}

// OpenOutboundStream opens a stream of type t. In state Connecting it waits
// for Connected. At the peer's stream limit it waits for credit, or fails
// at once with errors.ErrLimitReached when failOnBlocked is set. A
// unidirectional stream is returned as a *stream.Stream whose read side
// reports errors.ErrClosed.
func (c *Connection) OpenOutboundStream(ctx context.Context, t stream.Type, failOnBlocked bool) (*stream.Stream, error) {
	const op = "open stream"
	qc, err := c.ready(ctx, op)
	if err != nil {
		return nil, err
	}
	var s *stream.Stream
	switch t {
	case stream.Bidirectional:
		var qs *quic.Stream
		if failOnBlocked {
			qs, err = qc.OpenStream()
		} else {
			qs, err = qc.OpenStreamSync(ctx)
		}
		if err == nil {
			s = stream.NewStream(qs)
		}
	case stream.Unidirectional:
		var qs *quic.SendStream
		if failOnBlocked {
			qs, err = qc.OpenUniStream()
		} else {
			qs, err = qc.OpenUniStreamSync(ctx)
		}
		if err == nil {
			s = stream.NewSendOnlyStream(qs)
		}
	default:
		return nil, qerr.Op(op, &qerr.ConfigError{Field: "stream.Type", Reason: "unknown type " + strconv.Itoa(int(t))})
	}
	if err != nil {
		return nil, c.openError(ctx, op, qc, err)
	}
	c.streamsOpened.Add(1)
	return s, nil
}

func (c *Connection) openError(ctx context.Context, op string, qc *quic.Conn, err error) error {
	var limit *quic.StreamLimitReachedError
	if errors.As(err, &limit) {
		return qerr.Op(op, qerr.ErrLimitReached)
	}
	return c.opError(ctx, op, qc, err)
}

// OpenSendStream opens a unidirectional message stream: each Send writes one
// length-prefixed message, up to Settings.MaxMessageSize bytes. It waits for
// stream credit like OpenOutboundStream.
func (c *Connection) OpenSendStream(ctx context.Context) (*stream.SendStream, error) {
	const op = "open send stream"
	qc, err := c.ready(ctx, op)
	if err != nil {
		return nil, err
	}
	qs, err := qc.OpenUniStreamSync(ctx)
	if err != nil {
		return nil, c.openError(ctx, op, qc, err)
	}
	c.streamsOpened.Add(1)
	return stream.NewSendStream(qs, c.cfg.Settings.maxMessageSize()), nil
}

// AcceptInboundStream returns the next bidirectional stream the peer
// opened, waiting for one if none is queued.
func (c *Connection) AcceptInboundStream(ctx context.Context) (*stream.Stream, error) {
	const op = "accept stream"
	qc, err := c.ready(ctx, op)
	if err != nil {
		return nil, err
	}
	qs, err := qc.AcceptStream(ctx)
	if err != nil {
		return nil, c.opError(ctx, op, qc, err)
	}
	c.streamsAccepted.Add(1)
	return stream.NewStream(qs), nil
}

// AcceptInboundUniStream returns the next unidirectional stream the peer
// opened, waiting for one if none is queued. Wrap it in a
// stream.MessageReader to read a peer's SendStream.
func (c *Connection) AcceptInboundUniStream(ctx context.Context) (*stream.ReadStream, error) {
	const op = "accept uni stream"
	qc, err := c.ready(ctx, op)
	if err != nil {
		return nil, err
	}
	qs, err := qc.AcceptUniStream(ctx)
	if err != nil {
		return nil, c.opError(ctx, op, qc, err)
	}
	c.streamsAccepted.Add(1)
	return stream.NewReadStream(qs), nil
}

// datagramProbe is longer than any QUIC datagram can be, so that
// quic.Conn.SendDatagram rejects it and reports the current maximum without
// sending or copying anything.
var datagramProbe [1 << 16]byte

// SendDatagram sends b as one unreliable QUIC datagram (RFC 9221). It fails
// with errors.ErrDatagramDenied when the peer or this side has not enabled
// datagrams, and with a *errors.DatagramTooBigError when b is larger than
// MaxDatagramSize. It may block briefly while quic-go's send queue is full.
// b may be reused as soon as SendDatagram returns.
func (c *Connection) SendDatagram(b []byte) error {
	const op = "send datagram"
	qc := c.connected.Load()
	if qc == nil {
		// Not Connected when loaded; the state, read under the lock, says
		// whether it is not yet or no longer (or became Connected since).
		c.mu.Lock()
		state, err := c.state, c.err
		qc = c.connected.Load()
		c.mu.Unlock()
		switch {
		case state < Connected:
			return qerr.Op(op, qerr.ErrNotStarted)
		case state > Connected:
			return qerr.Op(op, err)
		}
	}
	local, remote := c.dgramLocal, c.dgramRemote
	switch {
	case !local:
		return qerr.Op(op, errDatagramsNotEnabled)
	case !remote:
		return qerr.Op(op, qerr.ErrDatagramDenied)
	}
	if err := qc.SendDatagram(b); err != nil {
		var tooBig *quic.DatagramTooLargeError
		if errors.As(err, &tooBig) {
			return qerr.Op(op, &qerr.DatagramTooBigError{Max: int(tooBig.MaxDatagramPayloadSize)})
		}
		return c.opError(context.Background(), op, qc, err)
	}
	c.datagramsSent.Add(1)
	return nil
}

// errDatagramsNotEnabled is ErrDatagramDenied for the local side.
var errDatagramsNotEnabled = &deniedError{"datagrams not enabled in this side's Settings"}

type deniedError struct{ why string }

func (e *deniedError) Error() string        { return qerr.ErrDatagramDenied.Error() + ": " + e.why }
func (e *deniedError) Is(target error) bool { return target == qerr.ErrDatagramDenied }

// ReceiveDatagram returns the oldest queued datagram from the peer, waiting
// for one if none is queued. It needs Settings.DatagramReceiveEnabled.
// The queue holds Settings.DatagramQueueLen datagrams; when it is full the
// oldest is dropped and counted in Stats.DatagramsDropped.
func (c *Connection) ReceiveDatagram(ctx context.Context) ([]byte, error) {
	const op = "receive datagram"
	if _, err := c.ready(ctx, op); err != nil {
		return nil, err
	}
	c.mu.Lock()
	q := c.dgrams
	c.mu.Unlock()
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
	c.mu.Lock()
	state, qc, ok := c.state, c.qc, c.dgramLocal && c.dgramRemote
	c.mu.Unlock()
	if state != Connected || !ok {
		return 0
	}
	var tooBig *quic.DatagramTooLargeError
	if err := qc.SendDatagram(datagramProbe[:]); errors.As(err, &tooBig) {
		return int(tooBig.MaxDatagramPayloadSize)
	}
	return 0
}

// LocalAddr returns the address of the connection's socket. It fails with
// errors.ErrNotStarted in state Open.
func (c *Connection) LocalAddr() (net.Addr, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.qc != nil:
		return c.qc.LocalAddr(), nil
	case c.tr != nil:
		return c.tr.tr.Conn.LocalAddr(), nil
	case c.state == Open:
		return nil, qerr.Op("local address", qerr.ErrNotStarted)
	}
	return nil, qerr.Op("local address", c.err)
}

// RemoteAddr returns the peer's address. It fails with errors.ErrNotStarted
// in state Open.
func (c *Connection) RemoteAddr() (net.Addr, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.qc != nil:
		return c.qc.RemoteAddr(), nil
	case c.remote != nil:
		return c.remote, nil
	case c.state == Open:
		return nil, qerr.Op("remote address", qerr.ErrNotStarted)
	}
	return nil, qerr.Op("remote address", c.err)
}

// RemoteCertificate returns the peer's leaf certificate once the credential
// has verified it, or nil.
func (c *Connection) RemoteCertificate() *x509.Certificate {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cert
}

// ReceiveRemoteCertificate waits until the peer's certificate has been
// received and accepted by the credential's trust policy, which happens
// before the handshake completes, and returns it. At that point the peer has
// not yet proven that it holds the certificate's key (TLS checks its
// CertificateVerify signature next): treat the peer as authenticated only
// once the connection is Connected. It fails with the connection's error when the connection shuts
// down without a verified certificate, and with errors.ErrNoCertificate when
// the handshake completed without one (a server that does not ask clients
// for certificates).
func (c *Connection) ReceiveRemoteCertificate(ctx context.Context) (*x509.Certificate, error) {
	const op = "receive remote certificate"
	select {
	case <-c.certDone:
	case <-ctx.Done():
		return nil, qerr.Op(op, context.Cause(ctx))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.cert != nil:
		return c.cert, nil
	case c.state == Connected:
		return nil, qerr.Op(op, qerr.ErrNoCertificate)
	}
	return nil, qerr.Op(op, c.err)
}

// NegotiatedALPN returns the application protocol agreed in the handshake,
// or "" before the connection is Connected.
func (c *Connection) NegotiatedALPN() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.alpn
}

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
	switch c.state {
	case Open, Connecting:
		return qerr.Op("shutdown", qerr.ErrNotStarted)
	case Connected:
		c.localShutdown = true
		c.state = Shutdown
		c.connected.Store(nil)
		c.err = &qerr.ConnectionError{Reason: qerr.ShutdownByLocal, Code: code}
		c.requestCloseLocked(code, "")
	}
	return nil
}

// ShutdownAndWait shuts the connection down like Shutdown and waits for
// ShutdownComplete: the seed's poll_shutdown. On a Connecting connection it
// first waits for the handshake. It returns nil when this side shut the
// connection down, and the connection's error when the peer or the transport
// did.
func (c *Connection) ShutdownAndWait(ctx context.Context, code uint64) error {
	const op = "shutdown"
	c.mu.Lock()
	switch c.state {
	case Open:
		c.mu.Unlock()
		return qerr.Op(op, qerr.ErrNotStarted)
	case Connecting:
		c.mu.Unlock()
		select {
		case <-c.handshakeDone:
		case <-ctx.Done():
			return qerr.Op(op, context.Cause(ctx))
		}
		c.mu.Lock()
	}
	if err := c.shutdownLocked(code); err != nil {
		c.mu.Unlock()
		return err
	}
	c.mu.Unlock()
	select {
	case <-c.done:
	case <-ctx.Done():
		return qerr.Op(op, context.Cause(ctx))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.localShutdown {
		return nil
	}
	return qerr.Op(op, c.err)
}

// WatchShutdown returns a channel that is closed when the connection reaches
// ShutdownComplete. It may be called in any state.
func (c *Connection) WatchShutdown() <-chan struct{} { return c.done }

// Err returns the connection's *errors.ConnectionError once it is shutting
// down, and nil before. The error matches errors.ErrConnectionLost.
func (c *Connection) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state < Shutdown || c.err == nil {
		return nil
	}
	return c.err
}

// requestClose closes the quic.Conn in a goroutine of its own, since
// CloseWithError waits for the connection to close; the first request wins.
func (c *Connection) requestClose(code uint64, msg string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.requestCloseLocked(code, msg)
}

func (c *Connection) requestCloseLocked(code uint64, msg string) {
	if c.closeStarted || c.closeSeen || c.qc == nil {
		return
	}
	c.closeStarted = true
	qc := c.qc
	go func() {
		defer close(c.closeDone)
		qc.CloseWithError(quic.ApplicationErrorCode(code), msg)
	}()
}

// abort closes the connection for a reason of this package's own, such as
// Registration.Close, whatever its state.
func (c *Connection) abort(reason qerr.Reason, cause error) {
	c.mu.Lock()
	if c.state >= Shutdown {
		c.mu.Unlock()
		return
	}
	if c.closeReason == 0 {
		c.closeReason, c.closeCause = reason, cause
	}
	cancel, qc := c.dialCancel, c.qc
	c.mu.Unlock()
	if cancel != nil {
		cancel(cause)
	}
	if qc != nil {
		c.requestClose(0, quicerr.InternalClosePrefix+cause.Error())
	}
}
