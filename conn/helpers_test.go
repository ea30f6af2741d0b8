package conn_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/quicconn/quicconn/certverify"
	"github.com/quicconn/quicconn/conn"
	"github.com/quicconn/quicconn/conntest"
	qerr "github.com/quicconn/quicconn/errors"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const alpn = "quicconn-test"

// creds returns a server and a client credential pinned to each other.
// Inside a synctest bubble, call it inside the bubble: the certificates'
// validity starts at the clock's now.
func creds(t testing.TB) (server, client *certverify.Credential) {
	t.Helper()
	server, err := certverify.GenerateSelfSigned([]string{"server.test"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	client, err = certverify.GenerateSelfSigned([]string{"client.test"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	server.TrustHashes(certverify.HashOf(client.Certificate.Certificate[0]))
	client.TrustHashes(certverify.HashOf(server.Certificate.Certificate[0]))
	return server, client
}

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// network is where a test's connections run: real loopback UDP, or a
// conntest.Network inside a synctest bubble, where time is fake and
// synctest.Wait tells when every goroutine is blocked.
type network struct {
	name     string
	inMemory bool
}

var (
	loopback = network{"loopback", false}
	inMemory = network{"conntest", true}
	networks = []network{loopback, inMemory}
)

// run runs f as a test on nw: inside a synctest bubble for the in-memory
// network, as it is for loopback.
func (nw network) run(t *testing.T, f func(t *testing.T)) {
	if nw.inMemory {
		synctest.Test(t, f)
		return
	}
	f(t)
}

// The addresses on a test's in-memory network. Nothing listens at silentHost,
// so what is sent there is dropped, as UDP to a host that does not answer.
const (
	clientHost = "10.0.0.1"
	serverHost = "10.0.0.2"
	silentHost = "10.0.0.3"
	serverPort = 443
)

// env is one test's registration, listener and credentials.
type env struct {
	t          *testing.T
	reg        *conn.Registration
	ln         *conn.Listener
	serverCred *certverify.Credential
	clientCred *certverify.Credential
	cfg        *conn.Configuration // the clients'
	host       string              // where the listener is
	port       uint16

	// On the in-memory network: the network, the listener's socket, and
	// every socket opened, closed when the test ends.
	net        *conntest.Network
	serverSock *holdConn
	mu         sync.Mutex
	socks      []*holdConn
}

type envOptions struct {
	server, client conn.Settings
	link           conntest.Link // of the in-memory network
	net            network       // loopback when not set
}

// newEnv makes a registration with a listener on o.net. On the in-memory
// network it must be called inside the synctest bubble of the test. When the
// test ends, the registration is closed and must become idle.
func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	if o.net.name == "" {
		o.net = loopback
	}
	e := &env{t: t, reg: conn.NewRegistration(t.Name())}
	t.Cleanup(func() {
		e.mu.Lock()
		socks := e.socks
		e.mu.Unlock()
		for _, s := range socks {
			s.release() // a held socket would keep its connection from closing
		}
		e.reg.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := e.reg.WaitIdle(ctx); err != nil {
			t.Errorf("WaitIdle after Close: %v", err)
		}
		for _, s := range socks {
			s.Close()
		}
	})
	e.serverCred, e.clientCred = creds(t)
	scfg, err := conn.NewConfiguration([]string{alpn}, o.server)
	if err != nil {
		t.Fatal(err)
	}
	if e.cfg, err = conn.NewConfiguration([]string{alpn}, o.client); err != nil {
		t.Fatal(err)
	}
	if o.net.inMemory {
		e.net = conntest.NewNetwork(o.link)
		e.serverSock = e.socket(net.JoinHostPort(serverHost, strconv.Itoa(serverPort)))
		e.ln, err = conn.Listen(e.reg, "", scfg, e.serverCred, conn.WithPacketConn(e.serverSock))
	} else {
		e.ln, err = conn.Listen(e.reg, "127.0.0.1:0", scfg, e.serverCred)
	}
	if err != nil {
		t.Fatal(err)
	}
	ua := e.ln.Addr().(*net.UDPAddr)
	e.host, e.port = ua.IP.String(), uint16(ua.Port)
	return e
}

// socket opens a socket at addr on the in-memory network.
func (e *env) socket(addr string) *holdConn {
	e.t.Helper()
	pc, err := e.net.ListenPacket(addr)
	if err != nil {
		e.t.Fatal(err)
	}
	s := &holdConn{PacketConn: pc}
	e.mu.Lock()
	e.socks = append(e.socks, s)
	e.mu.Unlock()
	return s
}

// client returns a new client Connection in state Open.
func (e *env) client() *conn.Connection {
	e.t.Helper()
	c, _ := e.clientOn()
	return c
}

// clientOn returns a new client Connection in state Open and, on the
// in-memory network, the socket of its own that it will use (nil on
// loopback, where Start opens one).
func (e *env) clientOn() (*conn.Connection, *holdConn) {
	e.t.Helper()
	var opts []conn.Option
	var sock *holdConn
	if e.net != nil {
		sock = e.socket(clientHost + ":0")
		opts = append(opts, conn.WithPacketConn(sock))
	}
	c, err := conn.New(e.reg, e.clientCred, opts...)
	if err != nil {
		e.t.Fatal(err)
	}
	return c, sock
}

// pair connects a client to the listener and returns both Connected.
func (e *env) pair() (client, server *conn.Connection) {
	e.t.Helper()
	client, server, _ = e.pairOn()
	return client, server
}

// pairOn is pair, and returns the client's socket too (nil on loopback).
func (e *env) pairOn() (client, server *conn.Connection, sock *holdConn) {
	e.t.Helper()
	ctx := ctxT(e.t, 10*time.Second)
	client, sock = e.clientOn()
	errc := make(chan error, 1)
	go func() { errc <- client.Start(ctx, e.cfg, e.host, e.port) }()
	server, err := e.ln.Accept(ctx)
	if err != nil {
		e.t.Fatalf("Listener.Accept: %v", err)
	}
	if err := server.Accept(ctx); err != nil {
		e.t.Fatalf("Connection.Accept: %v", err)
	}
	if err := <-errc; err != nil {
		e.t.Fatalf("Start: %v", err)
	}
	return client, server, sock
}

// holdConn is a socket on the in-memory network whose writes can be held:
// while held, WriteTo blocks until release. A connection that closes while
// its socket is held cannot send its CONNECTION_CLOSE, so it stays in state
// Shutdown, short of ShutdownComplete, for as long as the test needs.
type holdConn struct {
	*conntest.PacketConn
	mu   sync.Mutex
	gate chan struct{} // non-nil while held; closed by release
}

func (h *holdConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	h.mu.Lock()
	gate := h.gate
	h.mu.Unlock()
	if gate != nil {
		<-gate
	}
	return h.PacketConn.WriteTo(b, addr)
}

// hold makes the writes from now on wait for release.
func (h *holdConn) hold() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.gate == nil {
		h.gate = make(chan struct{})
	}
}

// release lets the held writes go and ends the hold.
func (h *holdConn) release() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.gate != nil {
		close(h.gate)
		h.gate = nil
	}
}

func certverifyStranger() (*certverify.Credential, error) {
	return certverify.GenerateSelfSigned([]string{"stranger.test"}, nil)
}

func hashOf(c *certverify.Credential) certverify.CertHash {
	return certverify.HashOf(c.Certificate.Certificate[0])
}

func port(a net.Addr) int {
	if ua, ok := a.(*net.UDPAddr); ok {
		return ua.Port
	}
	return 0
}

func second[T any](_ T, err error) error { return err }

// assertReason checks that err is a lost connection with reason and code.
func assertReason(t *testing.T, err error, reason qerr.Reason, code uint64) {
	t.Helper()
	var ce *qerr.ConnectionError
	if !errors.As(err, &ce) {
		t.Fatalf("error %v is not a *ConnectionError", err)
	}
	if !errors.Is(err, qerr.ErrConnectionLost) {
		t.Errorf("error %v does not match ErrConnectionLost", err)
	}
	if ce.Reason != reason || ce.Code != code {
		t.Errorf("error %v: reason %v code 0x%x, want %v 0x%x", err, ce.Reason, ce.Code, reason, code)
	}
}

// assertConnError checks that err, returned by an operation on c, is c's
// own error — the very *ConnectionError value that c.Err returns, wrapped
// in an *OpError — with reason and code.
func assertConnError(t *testing.T, c *conn.Connection, err error, reason qerr.Reason, code uint64) {
	t.Helper()
	if p := connErrorProblem(c, err, reason, code); p != "" {
		t.Error(p)
	}
}

// connErrorProblem says what is wrong with err for assertConnError, or "".
func connErrorProblem(c *conn.Connection, err error, reason qerr.Reason, code uint64) string {
	var ce, own *qerr.ConnectionError
	var oe *qerr.OpError
	switch {
	case !errors.As(err, &ce) || !errors.Is(err, qerr.ErrConnectionLost):
		return fmt.Sprintf("error %v is not a lost connection (*ConnectionError)", err)
	case ce.Reason != reason || ce.Code != code:
		return fmt.Sprintf("error %v: reason %v code 0x%x, want %v 0x%x", err, ce.Reason, ce.Code, reason, code)
	case !errors.As(err, &oe) || oe.Op == "":
		return fmt.Sprintf("error %v does not name its operation", err)
	case !errors.As(c.Err(), &own) || ce != own:
		return fmt.Sprintf("error %v holds a *ConnectionError %p, not the connection's own %p (%v)", err, ce, own, c.Err())
	}
	return ""
}

// started runs f in a goroutine and returns the channel its result arrives
// on, with the time it returned.
func started(f func() error) <-chan result {
	done := make(chan result, 1)
	go func() {
		err := f()
		done <- result{err, time.Now()}
	}()
	return done
}

type result struct {
	err error
	at  time.Time
}

// blocked reports, inside a synctest bubble, whether the call whose result
// comes on done is still waiting once every goroutine of the bubble is
// blocked: waiting, it waits for something that only another event can
// bring.
func blocked(done <-chan result) (result, bool) {
	synctest.Wait()
	select {
	case r := <-done:
		return r, false
	default:
		return result{}, true
	}
}

// atOnce runs f inside a synctest bubble and fails the test unless f
// returns without waiting for an event (a packet, a timer or another
// goroutine's action); it returns f's error. A call that waits is ended
// through its context, so that the failure leaves no goroutine behind.
func atOnce(t *testing.T, f func(ctx context.Context) error) error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := started(func() error { return f(ctx) })
	r, waiting := blocked(done)
	if waiting {
		cancel()
		t.Fatalf("the call waits (and returned %v once cancelled); want it to return at once", (<-done).err)
	}
	return r.err
}
