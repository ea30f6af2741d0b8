package main

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/quicconn/quicconn/certverify"
	"github.com/quicconn/quicconn/conn"
	"github.com/quicconn/quicconn/stream"
)

// The three backends run the same workloads through one small interface, so
// that every figure in the table comes from the same client and server code;
// only the transport underneath differs.

const alpn = "quicconn-perf"

// settings are the connection settings of every QUIC connection in the run,
// on both sides; rawQUICConfig is their exact translation for raw quic-go
// (what conn.Settings.quicConfig produces for them), so that windows, stream
// limits, timeouts and datagram support are identical.
var settings = conn.Settings{
	PeerBidiStreamCount:    100,
	PeerUniStreamCount:     100,
	DatagramReceiveEnabled: true,
	DatagramQueueLen:       128,
}

// clientSettings are a quicconn client's: raw quic-go neither resumes (it
// has no session cache) nor waits for the handshake's confirmation, so
// neither does a quicconn client beside it; resumedSettings resume, for
// the "handshakes resumed" row, where raw quic-go gets a session cache.
var (
	clientSettings  = withClient(settings, true)
	resumedSettings = withClient(settings, false)
)

func withClient(s conn.Settings, disableResumption bool) conn.Settings {
	s.SkipHandshakeConfirmation = true
	s.DisableResumption = disableResumption
	return s
}

func rawQUICConfig() *quic.Config {
	return &quic.Config{
		HandshakeIdleTimeout:  conn.DefaultHandshakeTimeout + time.Second, // conn puts quic-go's timer after its own
		MaxIdleTimeout:        conn.DefaultIdleTimeout,
		MaxIncomingStreams:    settings.PeerBidiStreamCount,
		MaxIncomingUniStreams: settings.PeerUniStreamCount,
		EnableDatagrams:       settings.DatagramReceiveEnabled,
		InitialPacketSize:     1200, // as conn sets it
	}
}

// A pstream is one bidirectional byte stream: a QUIC stream, or for TCP the
// TLS connection itself.
type pstream interface {
	io.Reader
	io.Writer
	CloseWrite() error
}

// A session is one connection, client side.
type session interface {
	// OpenStream opens a stream; on TCP it returns the connection, once.
	OpenStream(ctx context.Context) (pstream, error)
	SendDatagram(b []byte) error
	Close() error
	// KeyExchange names the negotiated key exchange, "" when unknown.
	KeyExchange() string
}

// A backend dials sessions to its server.
type backend interface {
	Name() string
	// Multiplexed is true when streams are cheap (QUIC): one stream per
	// request. On TCP each concurrent requester holds its own connection and
	// sends its requests on it one after another.
	Multiplexed() bool
	Datagrams() bool
	Dial(ctx context.Context) (session, error)
	// Close stops the server and every session it holds.
	Close() error
}

// An idleHolder holds accepted connections and does nothing else, so that the
// idle cost measured is the library's, not the perf server's.
type idleHolder interface {
	// DialIdle makes n connections, both sides complete, and returns a
	// function that closes them all.
	DialIdle(ctx context.Context, n int) (func(), error)
}

// creds are the two identities of a run, pinned to each other by hash so
// that both sides verify the peer exactly as a mesh node would.
type creds struct {
	server, client *certverify.Credential
}

func newCreds() (*creds, error) {
	s, err := certverify.GenerateSelfSigned([]string{"127.0.0.1", "perf-server"}, nil)
	if err != nil {
		return nil, err
	}
	c, err := certverify.GenerateSelfSigned([]string{"perf-client"}, nil)
	if err != nil {
		return nil, err
	}
	s.TrustHashes(certverify.HashOf(c.Certificate.Certificate[0]))
	c.TrustHashes(certverify.HashOf(s.Certificate.Certificate[0]))
	return &creds{server: s, client: c}, nil
}

// dialMany dials n sessions, 8 at a time.
func dialMany(ctx context.Context, b backend, n int) ([]session, error) {
	ss := make([]session, n)
	errs := make([]error, 8)
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := range errs {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if ss[i], errs[w] = b.Dial(ctx); errs[w] != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		for _, s := range ss {
			if s != nil {
				s.Close()
			}
		}
		return nil, err
	}
	return ss, nil
}

// ---- raw quic-go ----

type rawBackend struct {
	cr       *creds
	sessions tls.ClientSessionCache // for DialResumed
	srv      *server
	tr       *quic.Transport
	ln       *quic.EarlyListener
	addr     *net.UDPAddr
	wg       sync.WaitGroup
	hold     bool // idle mode: accept and hold only
}

func newRawBackend(cr *creds, hold bool) (*rawBackend, error) {
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	b := &rawBackend{cr: cr, srv: newServer(), tr: &quic.Transport{Conn: udp}, hold: hold,
		sessions: tls.NewLRUClientSessionCache(64)}
	// The very config quicconn's listener starts from, and ListenEarly as
	// quicconn's listener uses.
	ln, err := b.tr.ListenEarly(cr.server.ServerTLSConfig([]string{alpn}), rawQUICConfig())
	if err != nil {
		udp.Close()
		return nil, err
	}
	b.ln, b.addr = ln, udp.LocalAddr().(*net.UDPAddr)
	b.wg.Add(1)
	go b.accept()
	return b, nil
}

func (b *rawBackend) accept() {
	defer b.wg.Done()
	for {
		qc, err := b.ln.Accept(context.Background())
		if err != nil {
			return
		}
		if b.hold {
			continue
		}
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			select {
			case <-qc.HandshakeComplete():
			case <-qc.Context().Done():
				return
			}
			b.srv.serveQUIC(rawServerConn{qc})
		}()
	}
}

func (b *rawBackend) Name() string      { return "quic-go" }
func (b *rawBackend) Multiplexed() bool { return true }
func (b *rawBackend) Datagrams() bool   { return true }

func (b *rawBackend) Dial(ctx context.Context) (session, error) {
	return b.dial(ctx, nil)
}

// DialResumed dials with a session cache shared by the backend's dials, as
// a quicconn Registration has one.
func (b *rawBackend) DialResumed(ctx context.Context) (session, error) {
	return b.dial(ctx, b.sessions)
}

func (b *rawBackend) dial(ctx context.Context, sessions tls.ClientSessionCache) (session, error) {
	// A socket and a quic.Transport per connection, as quicconn's
	// conn.New + Start has.
	udp, err := net.ListenUDP("udp", &net.UDPAddr{})
	if err != nil {
		return nil, err
	}
	tr := &quic.Transport{Conn: udp}
	tlsConf := b.cr.client.ClientTLSConfig("127.0.0.1", []string{alpn})
	tlsConf.ClientSessionCache = sessions
	qc, err := tr.Dial(ctx, b.addr, tlsConf, rawQUICConfig())
	if err != nil {
		tr.Close()
		udp.Close()
		return nil, err
	}
	return &rawSession{qc: qc, tr: tr, udp: udp}, nil
}

func (b *rawBackend) DialIdle(ctx context.Context, n int) (func(), error) {
	var ss []session
	closeAll := func() {
		for _, s := range ss {
			s.Close()
		}
	}
	ss, err := dialMany(ctx, b, n)
	if err != nil {
		closeAll()
		return nil, err
	}
	return closeAll, nil
}

func (b *rawBackend) Close() error {
	b.ln.Close()
	err := b.tr.Close()
	b.tr.Conn.Close()
	b.wg.Wait()
	return err
}

type rawSession struct {
	qc  *quic.Conn
	tr  *quic.Transport
	udp *net.UDPConn
}

func (s *rawSession) OpenStream(ctx context.Context) (pstream, error) {
	st, err := s.qc.OpenStreamSync(ctx)
	if err != nil {
		return nil, err
	}
	return rawStream{st}, nil
}

func (s *rawSession) SendDatagram(b []byte) error { return s.qc.SendDatagram(b) }

func (s *rawSession) Close() error {
	err := s.qc.CloseWithError(0, "")
	s.tr.Close()
	s.udp.Close()
	return err
}

func (s *rawSession) Resumed() bool { return s.qc.ConnectionState().TLS.DidResume }

func (s *rawSession) KeyExchange() string {
	return tls.CurveID(s.qc.ConnectionState().TLS.CurveID).String()
}

type rawStream struct{ *quic.Stream }

func (s rawStream) CloseWrite() error { return s.Stream.Close() }

type rawServerConn struct{ qc *quic.Conn }

func (c rawServerConn) AcceptStream(ctx context.Context) (io.ReadWriteCloser, error) {
	return c.qc.AcceptStream(ctx)
}
func (c rawServerConn) ReceiveDatagram(ctx context.Context) ([]byte, error) {
	return c.qc.ReceiveDatagram(ctx)
}

// ---- quicconn ----

type connBackend struct {
	cr    *creds
	srv   *server
	reg   *conn.Registration  // server side
	creg  *conn.Registration  // client side
	cfg   *conn.Configuration // the server's
	ccfg  *conn.Configuration // the clients': clientSettings
	rcfg  *conn.Configuration // the clients' for DialResumed: resumedSettings
	ln    *conn.Listener
	host  string
	port  uint16
	wg    sync.WaitGroup
	hold  bool
	mu    sync.Mutex
	conns []*conn.Connection // held in idle mode
}

func newConnBackend(cr *creds, hold bool) (*connBackend, error) {
	cfg, err := conn.NewConfiguration([]string{alpn}, settings)
	if err != nil {
		return nil, err
	}
	ccfg, err := conn.NewConfiguration([]string{alpn}, clientSettings)
	if err != nil {
		return nil, err
	}
	rcfg, err := conn.NewConfiguration([]string{alpn}, resumedSettings)
	if err != nil {
		return nil, err
	}
	b := &connBackend{cr: cr, srv: newServer(), cfg: cfg, ccfg: ccfg, rcfg: rcfg, hold: hold,
		reg: conn.NewRegistration("perf-server"), creg: conn.NewRegistration("perf-client")}
	ln, err := conn.Listen(b.reg, "127.0.0.1:0", cfg, cr.server)
	if err != nil {
		b.reg.Close()
		b.creg.Close()
		return nil, err
	}
	b.ln = ln
	ua := ln.Addr().(*net.UDPAddr)
	b.host, b.port = ua.IP.String(), uint16(ua.Port)
	b.wg.Add(1)
	go b.accept()
	return b, nil
}

func (b *connBackend) accept() {
	defer b.wg.Done()
	for {
		c, err := b.ln.Accept(context.Background())
		if err != nil {
			return
		}
		if b.hold {
			b.mu.Lock()
			b.conns = append(b.conns, c)
			b.mu.Unlock()
			continue
		}
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			if err := c.Accept(context.Background()); err != nil {
				return
			}
			b.srv.serveQUIC(connServerConn{c})
		}()
	}
}

func (b *connBackend) Name() string      { return "quicconn" }
func (b *connBackend) Multiplexed() bool { return true }
func (b *connBackend) Datagrams() bool   { return true }

func (b *connBackend) Dial(ctx context.Context) (session, error) {
	return dialConn(ctx, b.creg, b.cr.client, b.ccfg, b.host, b.port)
}

// DialResumed dials with the Registration's session tickets.
func (b *connBackend) DialResumed(ctx context.Context) (session, error) {
	return dialConn(ctx, b.creg, b.cr.client, b.rcfg, b.host, b.port)
}

func dialConn(ctx context.Context, reg *conn.Registration, cred *certverify.Credential, cfg *conn.Configuration, host string, port uint16) (session, error) {
	c, err := conn.New(reg, cred)
	if err != nil {
		return nil, err
	}
	if err := c.Start(ctx, cfg, host, port); err != nil {
		return nil, err
	}
	return connSession{c}, nil
}

func (b *connBackend) DialIdle(ctx context.Context, n int) (func(), error) {
	var ss []session
	closeAll := func() {
		for _, s := range ss {
			s.Close()
		}
		b.mu.Lock()
		held := b.conns
		b.conns = nil
		b.mu.Unlock()
		for _, c := range held {
			c.Shutdown(0)
		}
		wctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, c := range held {
			select {
			case <-c.WatchShutdown():
			case <-wctx.Done():
			}
		}
	}
	ss, err := dialMany(ctx, b, n)
	if err != nil {
		closeAll()
		return nil, err
	}
	// Wait until the server side has accepted all of them and finished
	// their handshakes, so that both sides are counted.
	for {
		b.mu.Lock()
		held := len(b.conns)
		b.mu.Unlock()
		if held >= n || ctx.Err() != nil {
			break
		}
		time.Sleep(time.Millisecond)
	}
	b.mu.Lock()
	held := b.conns
	b.mu.Unlock()
	for _, c := range held {
		if err := c.Accept(ctx); err != nil {
			closeAll()
			return nil, err
		}
	}
	return closeAll, nil
}

func (b *connBackend) Close() error {
	b.ln.Close()
	b.creg.Close()
	err := b.reg.Close()
	b.wg.Wait()
	return err
}

type connSession struct{ c *conn.Connection }

func (s connSession) OpenStream(ctx context.Context) (pstream, error) {
	st, err := s.c.OpenOutboundStream(ctx, stream.Bidirectional, false)
	if err != nil {
		return nil, err
	}
	return connStream{st}, nil
}

func (s connSession) SendDatagram(b []byte) error { return s.c.SendDatagram(b) }

func (s connSession) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return s.c.ShutdownAndWait(ctx, 0)
}

// KeyExchange is unknown: quicconn does not expose the TLS state.
func (s connSession) KeyExchange() string { return "" }

func (s connSession) Resumed() bool { return s.c.Resumed() }

type connStream struct{ *stream.Stream }

func (s connStream) CloseWrite() error { return s.Stream.Close() }

type connServerConn struct{ c *conn.Connection }

func (c connServerConn) AcceptStream(ctx context.Context) (io.ReadWriteCloser, error) {
	return c.c.AcceptInboundStream(ctx)
}
func (c connServerConn) ReceiveDatagram(ctx context.Context) ([]byte, error) {
	return c.c.ReceiveDatagram(ctx)
}

// remoteBackend is quicconn against a -listen server in another process.
type remoteBackend struct {
	reg  *conn.Registration
	cred *certverify.Credential
	cfg  *conn.Configuration
	rcfg *conn.Configuration // for DialResumed
	host string
	port uint16
}

func newRemoteBackend(addr string, cred *certverify.Credential) (*remoteBackend, error) {
	host, ps, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	port, err := strconv.ParseUint(ps, 10, 16)
	if err != nil {
		return nil, err
	}
	cfg, err := conn.NewConfiguration([]string{alpn}, clientSettings)
	if err != nil {
		return nil, err
	}
	rcfg, err := conn.NewConfiguration([]string{alpn}, resumedSettings)
	if err != nil {
		return nil, err
	}
	return &remoteBackend{reg: conn.NewRegistration("perf-client"), cred: cred, cfg: cfg, rcfg: rcfg, host: host, port: uint16(port)}, nil
}

func (b *remoteBackend) Name() string      { return "quicconn" }
func (b *remoteBackend) Multiplexed() bool { return true }
func (b *remoteBackend) Datagrams() bool   { return true }
func (b *remoteBackend) Dial(ctx context.Context) (session, error) {
	return dialConn(ctx, b.reg, b.cred, b.cfg, b.host, b.port)
}

// DialResumed dials with the Registration's session tickets.
func (b *remoteBackend) DialResumed(ctx context.Context) (session, error) {
	return dialConn(ctx, b.reg, b.cred, b.rcfg, b.host, b.port)
}
func (b *remoteBackend) Close() error { return b.reg.Close() }

// ---- TCP + TLS 1.3 ----

type tcpBackend struct {
	cr   *creds
	srv  *server
	ln   net.Listener
	addr string
	hold bool
	wg   sync.WaitGroup
	mu   sync.Mutex
	held []*tls.Conn
}

func newTCPBackend(cr *creds, hold bool) (*tcpBackend, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	b := &tcpBackend{cr: cr, srv: newServer(), ln: ln, addr: ln.Addr().String(), hold: hold}
	b.wg.Add(1)
	go b.accept(cr.server.ServerTLSConfig([]string{alpn}))
	return b, nil
}

func (b *tcpBackend) accept(conf *tls.Config) {
	defer b.wg.Done()
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return
		}
		tc := tls.Server(c, conf)
		if b.hold {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := tc.HandshakeContext(ctx)
			cancel()
			if err != nil {
				c.Close()
				continue
			}
			b.mu.Lock()
			b.held = append(b.held, tc)
			b.mu.Unlock()
			continue
		}
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			defer tc.Close()
			b.srv.serveTCP(tc)
		}()
	}
}

func (b *tcpBackend) Name() string      { return "TCP+TLS" }
func (b *tcpBackend) Multiplexed() bool { return false }
func (b *tcpBackend) Datagrams() bool   { return false }

func (b *tcpBackend) Dial(ctx context.Context) (session, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", b.addr)
	if err != nil {
		return nil, err
	}
	tc := tls.Client(c, b.cr.client.ClientTLSConfig("127.0.0.1", []string{alpn}))
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return &tcpSession{c: tc}, nil
}

func (b *tcpBackend) DialIdle(ctx context.Context, n int) (func(), error) {
	var ss []session
	closeAll := func() {
		for _, s := range ss {
			s.Close()
		}
		b.mu.Lock()
		held := b.held
		b.held = nil
		b.mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	}
	ss, err := dialMany(ctx, b, n)
	if err != nil {
		closeAll()
		return nil, err
	}
	for {
		b.mu.Lock()
		held := len(b.held)
		b.mu.Unlock()
		if held >= n || ctx.Err() != nil {
			break
		}
		time.Sleep(time.Millisecond)
	}
	return closeAll, nil
}

func (b *tcpBackend) Close() error {
	err := b.ln.Close()
	b.wg.Wait()
	return err
}

type tcpSession struct {
	c      *tls.Conn
	opened bool
}

func (s *tcpSession) OpenStream(context.Context) (pstream, error) {
	if s.opened {
		return nil, errors.New("a TCP session carries one stream")
	}
	s.opened = true
	return s.c, nil
}

func (s *tcpSession) SendDatagram([]byte) error { return errors.ErrUnsupported }
func (s *tcpSession) Close() error              { return s.c.Close() }
func (s *tcpSession) KeyExchange() string {
	return s.c.ConnectionState().CurveID.String()
}
