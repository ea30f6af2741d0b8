package conntest

import (
	"context"
	"testing"
	"time"

	"github.com/quicconn/quicconn/certverify"
	"github.com/quicconn/quicconn/conn"
)

// A PairOption changes how NewPair builds its connections.
type PairOption func(*pairOptions)

type pairOptions struct {
	link     Link
	settings conn.Settings
	alpn     []string
}

// WithLink sets the impairments of both directions of the pair's pipe.
func WithLink(l Link) PairOption { return func(o *pairOptions) { o.link = l } }

// WithSettings sets the Settings of both sides.
func WithSettings(s conn.Settings) PairOption { return func(o *pairOptions) { o.settings = s } }

// WithALPN sets the application protocols both sides offer. The default is
// "conntest".
func WithALPN(alpn ...string) PairOption { return func(o *pairOptions) { o.alpn = alpn } }

// NewPair returns a client and a server connection, Connected to each other
// over an in-memory pipe, each with a fresh self-signed credential that pins
// the other's certificate. Both are in one Registration, closed when the test
// ends; the test fails if the registration does not become idle then. Use
// t.Cleanup's order (last registered runs first) to check state before that.
//
// NewPair fails the test if the handshake does not complete within the
// handshake timeout of the settings.
func NewPair(t testing.TB, opts ...PairOption) (client, server *conn.Connection) {
	t.Helper()
	o := pairOptions{alpn: []string{"conntest"}}
	for _, opt := range opts {
		opt(&o)
	}
	cfg, err := conn.NewConfiguration(o.alpn, o.settings)
	if err != nil {
		t.Fatalf("conntest.NewPair: %v", err)
	}
	sc, err := certverify.GenerateSelfSigned([]string{"server.conntest"}, nil)
	if err != nil {
		t.Fatalf("conntest.NewPair: %v", err)
	}
	cc, err := certverify.GenerateSelfSigned([]string{"client.conntest"}, nil)
	if err != nil {
		t.Fatalf("conntest.NewPair: %v", err)
	}
	sc.TrustHashes(certverify.HashOf(cc.Certificate.Certificate[0]))
	cc.TrustHashes(certverify.HashOf(sc.Certificate.Certificate[0]))

	a, b := NewPipe(o.link)
	reg := conn.NewRegistration(t.Name())
	t.Cleanup(func() {
		reg.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := reg.WaitIdle(ctx); err != nil {
			t.Errorf("conntest.NewPair: registration not idle after Close: %v", err)
		}
		a.Close()
		b.Close()
	})

	ln, err := conn.Listen(reg, "", cfg, sc, conn.WithPacketConn(b))
	if err != nil {
		t.Fatalf("conntest.NewPair: %v", err)
	}
	defer ln.Close()
	client, err = conn.New(reg, cc, conn.WithPacketConn(a))
	if err != nil {
		t.Fatalf("conntest.NewPair: %v", err)
	}

	timeout := o.settings.HandshakeTimeout
	if timeout == 0 {
		timeout = conn.DefaultHandshakeTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout+time.Second)
	defer cancel()
	started := make(chan error, 1)
	go func() { started <- client.Start(ctx, cfg, "127.0.0.2", 1) }()
	server, err = ln.Accept(ctx)
	if err != nil {
		t.Fatalf("conntest.NewPair: accept: %v", err)
	}
	if err := server.Accept(ctx); err != nil {
		t.Fatalf("conntest.NewPair: server handshake: %v", err)
	}
	if err := <-started; err != nil {
		t.Fatalf("conntest.NewPair: client handshake: %v", err)
	}
	return client, server
}
