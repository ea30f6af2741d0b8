package reliability_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"flag"
	"io"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/quicconn/quicconn/certverify"
	"github.com/quicconn/quicconn/conn"
	"github.com/quicconn/quicconn/conntest"
	qerr "github.com/quicconn/quicconn/errors"
)

var soak = flag.Bool("soak", false, "run the long variants")

// TestMain fails the run if any test leaves a goroutine behind.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const alpn = "reliability"

// creds returns a server and a client credential pinned to each other.
func creds(t testing.TB) (server, client *certverify.Credential) {
	t.Helper()
	server = mustCred(t, []string{"server.test"}, nil)
	client = mustCred(t, []string{"client.test"}, nil)
	server.TrustHashes(certverify.HashOf(client.Certificate.Certificate[0]))
	client.TrustHashes(certverify.HashOf(server.Certificate.Certificate[0]))
	return server, client
}

func mustCred(t testing.TB, subjects []string, endorsers []ed25519Key) *certverify.Credential {
	t.Helper()
	c, err := certverify.GenerateSelfSigned(subjects, endorsers)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// pair is a client and a server connected over a conntest pipe that the test
// can impair and cut.
type pair struct {
	reg            *conn.Registration
	cfg            *conn.Configuration
	a, b           *conntest.PacketConn // client end, server end
	ln             *conn.Listener
	client, server *conn.Connection
}

type pairConfig struct {
	link           conntest.Link
	settings       conn.Settings
	serverSettings *conn.Settings // overrides settings for the server
	cc, sc         *certverify.Credential
	clOpts, lnOpts []conn.Option
	keepListener   bool
}

// newPair connects a pair over a fresh pipe. Everything is closed, and the
// registration checked idle, when the test ends. It works in real time and
// inside a synctest bubble (call it inside the bubble).
func newPair(t testing.TB, pc pairConfig) *pair {
	t.Helper()
	p := listenPipe(t, pc)
	p.connect(t)
	if !pc.keepListener {
		p.ln.Close()
	}
	return p
}

// listenPipe makes the pipe, the registration and the listener, but does not
// connect.
func listenPipe(t testing.TB, pc pairConfig) *pair {
	t.Helper()
	cfg, err := conn.NewConfiguration([]string{alpn}, pc.settings)
	if err != nil {
		t.Fatal(err)
	}
	scfg := cfg
	if pc.serverSettings != nil {
		if scfg, err = conn.NewConfiguration([]string{alpn}, *pc.serverSettings); err != nil {
			t.Fatal(err)
		}
	}
	if pc.cc == nil || pc.sc == nil {
		pc.sc, pc.cc = creds(t)
	}
	p := &pair{cfg: cfg}
	p.a, p.b = conntest.NewPipe(pc.link)
	p.reg = conn.NewRegistration(t.Name())
	t.Cleanup(func() {
		p.reg.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := p.reg.WaitIdle(ctx); err != nil {
			t.Errorf("registration not idle after Close: %v", err)
		}
		p.a.Close()
		p.b.Close()
	})
	p.ln, err = conn.Listen(p.reg, "", scfg, pc.sc, append([]conn.Option{conn.WithPacketConn(p.b), conn.WithLogger(discard)}, pc.lnOpts...)...)
	if err != nil {
		t.Fatal(err)
	}
	p.client, err = conn.New(p.reg, pc.cc, append([]conn.Option{conn.WithPacketConn(p.a), conn.WithLogger(discard)}, pc.clOpts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (p *pair) connect(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	started := make(chan error, 1)
	go func() { started <- p.client.Start(ctx, p.cfg, "127.0.0.2", 1) }()
	var err error
	p.server, err = p.ln.Accept(ctx)
	if err != nil {
		t.Fatalf("listener accept: %v", err)
	}
	if err := p.server.Accept(ctx); err != nil {
		t.Fatalf("server handshake: %v", err)
	}
	if err := <-started; err != nil {
		t.Fatalf("client handshake: %v", err)
	}
}

// pattern fills a deterministic pseudo-random payload of n bytes for stream
// i, so that sender and receiver can both compute its hash.
func pattern(i, n int) []byte {
	b := make([]byte, n)
	seed := sha256.Sum256([]byte{byte(i), byte(i >> 8), 0x5a})
	for off := 0; off < n; off += 32 {
		seed = sha256.Sum256(seed[:])
		copy(b[off:], seed[:])
	}
	return b
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// readAllHash reads r to EOF and returns the SHA-256 and length of what it
// read.
func readAllHash(r io.Reader) ([32]byte, int64, error) {
	h := sha256.New()
	n, err := io.CopyBuffer(h, r, make([]byte, 64<<10))
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum, n, err
}

// connErr extracts the *qerr.ConnectionError from err, failing the test when
// there is none.
func connErr(t testing.TB, what string, err error) *qerr.ConnectionError {
	t.Helper()
	var ce *qerr.ConnectionError
	if !errors.As(err, &ce) {
		t.Fatalf("%s: err = %v (%T), want a *qerr.ConnectionError", what, err, err)
	}
	if !errors.Is(err, qerr.ErrConnectionLost) {
		t.Errorf("%s: err = %v does not match ErrConnectionLost", what, err)
	}
	return ce
}
