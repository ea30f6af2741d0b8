package conn_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/quicconn/quicconn/certverify"
	"github.com/quicconn/quicconn/conn"
	"github.com/quicconn/quicconn/conntest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const alpn = "quicconn-test"

// creds returns a server and a client credential pinned to each other.
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

// network is where a test's connections run: real loopback UDP or an
// in-memory conntest pipe.
type network struct {
	name string
	// setup returns the options for the listener and the client, and the
	// address the client dials.
	setup func(t *testing.T, link conntest.Link) (lnOpts, clOpts []conn.Option, lnAddr string, pipe *conntest.PacketConn)
}

var networks = []network{
	{"loopback", func(t *testing.T, _ conntest.Link) ([]conn.Option, []conn.Option, string, *conntest.PacketConn) {
		return nil, nil, "127.0.0.1:0", nil
	}},
	{"pipe", func(t *testing.T, link conntest.Link) ([]conn.Option, []conn.Option, string, *conntest.PacketConn) {
		a, b := conntest.NewPipe(link)
		t.Cleanup(func() { a.Close(); b.Close() })
		return []conn.Option{conn.WithPacketConn(b)}, []conn.Option{conn.WithPacketConn(a)}, "", a
	}},
}

// env is one test's registration, listener and credentials.
type env struct {
	t          *testing.T
	reg        *conn.Registration
	ln         *conn.Listener
	serverCred *certverify.Credential
	clientCred *certverify.Credential
	cfg        *conn.Configuration
	clOpts     []conn.Option
	pipe       *conntest.PacketConn // client end of the pipe, nil on loopback
	host       string
	port       uint16
}

type envOptions struct {
	server, client conn.Settings
	link           conntest.Link
	net            network
}

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	if o.net.setup == nil {
		o.net = networks[0]
	}
	lnOpts, clOpts, addr, pipe := o.net.setup(t, o.link)
	reg := conn.NewRegistration(t.Name())
	t.Cleanup(func() {
		reg.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := reg.WaitIdle(ctx); err != nil {
			t.Errorf("WaitIdle after Close: %v", err)
		}
	})
	sc, cc := creds(t)
	scfg, err := conn.NewConfiguration([]string{alpn}, o.server)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := conn.Listen(reg, addr, scfg, sc, lnOpts...)
	if err != nil {
		t.Fatal(err)
	}
	ccfg, err := conn.NewConfiguration([]string{alpn}, o.client)
	if err != nil {
		t.Fatal(err)
	}
	ua := ln.Addr().(*net.UDPAddr)
	return &env{t: t, reg: reg, ln: ln, serverCred: sc, clientCred: cc, cfg: ccfg, clOpts: clOpts, pipe: pipe,
		host: ua.IP.String(), port: uint16(ua.Port)}
}

// client returns a new client Connection in state Open.
func (e *env) client() *conn.Connection {
	e.t.Helper()
	c, err := conn.New(e.reg, e.clientCred, e.clOpts...)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// pair connects a client to the listener and returns both Connected.
func (e *env) pair() (client, server *conn.Connection) {
	e.t.Helper()
	ctx := ctxT(e.t, 10*time.Second)
	client = e.client()
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
	return client, server
}

// within fails the test unless f returns within d.
func within(t *testing.T, d time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s did not return within %v", what, d)
	}
}

func certverifyStranger() (*certverify.Credential, error) {
	return certverify.GenerateSelfSigned([]string{"stranger.test"}, nil)
}

func hashOf(c *certverify.Credential) certverify.CertHash {
	return certverify.HashOf(c.Certificate.Certificate[0])
}
