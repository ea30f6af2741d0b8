package conntest

import (
	"context"
	"testing"
	"time"

	"github.com/quicconn/quicconn/certverify"
	"github.com/quicconn/quicconn/conn"
)

// A PairOption changes how NewPair or NewMesh builds its connections.
type PairOption func(*pairOptions)

type pairOptions struct {
	link               Link
	linkSet            bool
	settings           conn.Settings
	alpn               []string
	client, server     *certverify.Credential
	nodeCreds          []*certverify.Credential
	pairCreds, meshCrd bool // which credential option was given
}

// WithLink sets the impairments of both directions of the pair's pipe. It is
// for NewPair only: a Mesh's links are those of its Network.
func WithLink(l Link) PairOption {
	return func(o *pairOptions) { o.link, o.linkSet = l, true }
}

// WithSettings sets the Settings of both sides (of every node, for NewMesh).
func WithSettings(s conn.Settings) PairOption { return func(o *pairOptions) { o.settings = s } }

// WithALPN sets the application protocols both sides offer. The default is
// "conntest".
func WithALPN(alpn ...string) PairOption { return func(o *pairOptions) { o.alpn = alpn } }

// WithCredentials makes NewPair use the given credentials instead of fresh
// ones: the client presents client and verifies the server with it, and the
// server the other way round. NewPair uses them as they are and adds no
// trust, so they must already accept each other (pinned hashes, endorser
// keys or Roots); a pair they refuse fails the test, and so does a nil
// credential. A certificate checks its validity dates against the clock of
// the handshake: inside a synctest bubble (whose clock starts in 2000), make
// the credentials inside the bubble. It is for NewPair only; NewMesh takes
// WithNodeCredentials.
func WithCredentials(client, server *certverify.Credential) PairOption {
	return func(o *pairOptions) { o.client, o.server, o.pairCreds = client, server, true }
}

// WithNodeCredentials makes NewMesh give node i the credential creds[i]
// instead of a fresh one, with as many credentials as nodes. As with
// WithCredentials, NewMesh adds no trust to them: every node must already
// accept every other (a shared endorser key is the usual way). It is for
// NewMesh only.
func WithNodeCredentials(creds ...*certverify.Credential) PairOption {
	return func(o *pairOptions) { o.nodeCreds, o.meshCrd = creds, true }
}

func newPairOptions(opts []PairOption) pairOptions {
	o := pairOptions{alpn: []string{"conntest"}}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// NewPair returns a client and a server connection, Connected to each other
// over an in-memory pipe, each with a fresh self-signed credential that pins
// the other's certificate (or with the credentials of WithCredentials). Both
// are in one Registration, closed when the test ends; the test fails if the
// registration does not become idle then. Use t.Cleanup's order (last
// registered runs first) to check state before that.
//
// NewPair fails the test if the handshake does not complete within the
// handshake timeout of the settings.
func NewPair(t testing.TB, opts ...PairOption) (client, server *conn.Connection) {
	t.Helper()
	o := newPairOptions(opts)
	if o.meshCrd {
		t.Fatalf("conntest.NewPair: WithNodeCredentials is for NewMesh; use WithCredentials")
	}
	cfg, err := conn.NewConfiguration(o.alpn, o.settings)
	if err != nil {
		t.Fatalf("conntest.NewPair: %v", err)
	}
	cc, sc := o.client, o.server
	if o.pairCreds {
		if cc == nil || sc == nil {
			t.Fatalf("conntest.NewPair: WithCredentials(%p, %p): both credentials are needed", cc, sc)
		}
	} else {
		if sc, err = certverify.GenerateSelfSigned([]string{"server.conntest"}, nil); err != nil {
			t.Fatalf("conntest.NewPair: %v", err)
		}
		if cc, err = certverify.GenerateSelfSigned([]string{"client.conntest"}, nil); err != nil {
			t.Fatalf("conntest.NewPair: %v", err)
		}
		sc.TrustHashes(certverify.HashOf(cc.Certificate.Certificate[0]))
		cc.TrustHashes(certverify.HashOf(sc.Certificate.Certificate[0]))
	}

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
