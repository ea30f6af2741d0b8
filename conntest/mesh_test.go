package conntest_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/quicconn/quicconn/certverify"
	"github.com/quicconn/quicconn/conn"
	"github.com/quicconn/quicconn/conntest"
	qerr "github.com/quicconn/quicconn/errors"
	"github.com/quicconn/quicconn/stream"
)

// serveEcho echoes every bidirectional stream c accepts until c ends.
func serveEcho(c *conn.Connection) {
	for {
		s, err := c.AcceptInboundStream(context.Background())
		if err != nil {
			return
		}
		go func() {
			io.Copy(s, s)
			s.Close()
		}()
	}
}

// echoOn sends msg on a new stream of c and checks that it comes back.
func echoOn(t testing.TB, c *conn.Connection, msg string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := c.OpenOutboundStream(ctx, stream.Bidirectional, false)
	if err != nil {
		t.Fatalf("%s: open stream: %v", msg, err)
	}
	s.Write([]byte(msg))
	s.Close()
	got, err := io.ReadAll(s)
	if err != nil || string(got) != msg {
		t.Fatalf("echo = %q, %v; want %q", got, err, msg)
	}
}

func TestMesh(t *testing.T) {
	bothClocks(t, func(t *testing.T) {
		n := conntest.NewNetwork(conntest.Link{Delay: 5 * time.Millisecond, Loss: 0.01, Seed: 1})
		const nodes = 4
		m := conntest.NewMesh(t, n, nodes, conntest.WithALPN("mesh-test"))
		if m.Len() != nodes || len(m.Nodes()) != nodes || m.Network() != n {
			t.Fatalf("Len %d, %d Nodes, Network %p; want %d, %d, %p", m.Len(), len(m.Nodes()), m.Network(), nodes, nodes, n)
		}
		if got := m.Hosts(1, 3); len(got) != 2 || got[0] != "10.0.0.2" || got[1] != "10.0.0.3" {
			t.Errorf("Hosts(1, 3) = %v", got)
		}
		for _, nd := range m.Nodes() {
			if nd.Conn(nd.Index) != nil {
				t.Errorf("node %d has a connection to itself", nd.Index)
			}
			if want := nd.Host + ":4433"; nd.PacketConn.LocalAddr().String() != want || nd.Listener.Addr().String() != want {
				t.Errorf("node %d: socket at %v, listener at %v; want %s", nd.Index, nd.PacketConn.LocalAddr(), nd.Listener.Addr(), want)
			}
			for peer := range nodes {
				if peer == nd.Index {
					continue
				}
				c := nd.Conn(peer)
				if c.State() != conn.Connected || c.NegotiatedALPN() != "mesh-test" {
					t.Fatalf("node %d → %d: %v, ALPN %q", nd.Index, peer, c.State(), c.NegotiatedALPN())
				}
				// Each side verified the other's own certificate.
				if cert := c.RemoteCertificate(); cert == nil || !bytes.Equal(cert.Raw, m.Node(peer).Credential.Certificate.Certificate[0]) {
					t.Errorf("node %d → %d: the remote certificate is not node %d's", nd.Index, peer, peer)
				}
				go serveEcho(c)
			}
		}
		// Every node reaches every other, whichever side dialled.
		for i := range nodes {
			for j := range nodes {
				if i != j {
					echoOn(t, m.Node(i).Conn(j), fmt.Sprintf("node %d to node %d", i, j))
				}
			}
		}
	})
}

func TestMeshPartitionAndRemesh(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const idle = 5 * time.Second
		n := conntest.NewNetwork(conntest.Link{Delay: 20 * time.Millisecond})
		m := conntest.NewMesh(t, n, 5, conntest.WithSettings(conn.Settings{IdleTimeout: idle, KeepAlive: time.Second}))
		ctx := context.Background()
		if made, err := m.Remesh(ctx); made != 0 || err != nil {
			t.Fatalf("Remesh of a whole mesh = %d, %v; want 0, nil", made, err)
		}

		// 0 and 1 against 2, 3 and 4.
		groupOf := func(i int) int { return min(i/2, 1) }
		n.Partition(m.Hosts(0, 2), m.Hosts(2, 5))
		cut := time.Now()
		old := make(map[[2]int]*conn.Connection)
		for i := range 5 {
			for j := range 5 {
				if i == j {
					continue
				}
				c := m.Node(i).Conn(j)
				old[[2]int{i, j}] = c
				if groupOf(i) == groupOf(j) {
					continue
				}
				<-c.WatchShutdown()
				var ce *qerr.ConnectionError
				if !errors.As(c.Err(), &ce) || ce.Reason != qerr.IdleTimeout {
					t.Errorf("%d → %d across the cut: Err = %v, want IdleTimeout", i, j, c.Err())
				}
			}
		}
		if d := time.Since(cut); d < idle || d > 2*idle {
			t.Errorf("the connections across the cut ended %v after it, want about the %v idle timeout", d, idle)
		}
		n.Heal()
		made, err := m.Remesh(ctx)
		if err != nil || made != 2*3 {
			t.Fatalf("Remesh = %d, %v; want the 6 cut pairs, nil", made, err)
		}
		for pair, c := range old {
			i, j := pair[0], pair[1]
			now := m.Node(i).Conn(j)
			if across := groupOf(i) != groupOf(j); across == (now == c) {
				t.Errorf("%d → %d: replaced %v, want %v", i, j, now != c, across)
			}
			go serveEcho(now)
		}
		for pair := range old {
			echoOn(t, m.Node(pair[0]).Conn(pair[1]), fmt.Sprintf("%d to %d after the re-mesh", pair[0], pair[1]))
		}
	})
}

func TestMeshWithNodeCredentials(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// The nodes trust a shared endorser, as a validator set might, and
		// no certificate hash: the mesh must use them as they are.
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		creds := make([]*certverify.Credential, 3)
		for i := range creds {
			if creds[i], err = certverify.GenerateSelfSigned([]string{fmt.Sprintf("validator%d", i)}, []ed25519.PrivateKey{priv}); err != nil {
				t.Fatal(err)
			}
			creds[i].TrustPubKeys(pub)
		}
		m := conntest.NewMesh(t, conntest.NewNetwork(conntest.Link{Delay: time.Millisecond}), 3, conntest.WithNodeCredentials(creds...))
		for i, nd := range m.Nodes() {
			if nd.Credential != creds[i] {
				t.Errorf("node %d does not use credential %d", i, i)
			}
			for j := range 3 {
				if i != j && !bytes.Equal(nd.Conn(j).RemoteCertificate().Raw, creds[j].Certificate.Certificate[0]) {
					t.Errorf("node %d → %d: the peer is not validator %d", i, j, j)
				}
			}
		}
	})
}

func TestNewPairWithCredentials(t *testing.T) {
	for _, tc := range []struct {
		name string
		// creds returns the client's and the server's credential, which
		// accept each other.
		creds func(t *testing.T) (client, server *certverify.Credential)
	}{
		{
			name: "pinned by certificate hash",
			creds: func(t *testing.T) (*certverify.Credential, *certverify.Credential) {
				c, s := mustGenerate(t, "client.example", nil), mustGenerate(t, "server.example", nil)
				c.TrustHashes(certverify.HashOf(s.Certificate.Certificate[0]))
				s.TrustHashes(certverify.HashOf(c.Certificate.Certificate[0]))
				return c, s
			},
		},
		{
			name: "endorsed by a shared key",
			creds: func(t *testing.T) (*certverify.Credential, *certverify.Credential) {
				pub, priv, err := ed25519.GenerateKey(rand.Reader)
				if err != nil {
					t.Fatal(err)
				}
				c, s := mustGenerate(t, "client.example", priv), mustGenerate(t, "server.example", priv)
				c.TrustPubKeys(pub)
				s.TrustPubKeys(pub)
				return c, s
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cc, sc := tc.creds(t)
				client, server := conntest.NewPair(t, conntest.WithCredentials(cc, sc))
				if got := client.RemoteCertificate(); got == nil || !bytes.Equal(got.Raw, sc.Certificate.Certificate[0]) {
					t.Error("the client did not see the server's own certificate")
				}
				if got := server.RemoteCertificate(); got == nil || !bytes.Equal(got.Raw, cc.Certificate.Certificate[0]) {
					t.Error("the server did not see the client's own certificate")
				}
				go serveEcho(server)
				echoOn(t, client, "with the user's credentials")
			})
		})
	}
}

func mustGenerate(t *testing.T, subject string, endorser ed25519.PrivateKey) *certverify.Credential {
	t.Helper()
	var endorsers []ed25519.PrivateKey
	if endorser != nil {
		endorsers = []ed25519.PrivateKey{endorser}
	}
	c, err := certverify.GenerateSelfSigned([]string{subject}, endorsers)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestOptionsThatDoNotApply(t *testing.T) {
	cred := func() *certverify.Credential { return mustGenerate(t, "x", nil) }
	for _, tc := range []struct {
		name string
		run  func(tb testing.TB)
		want string // in the failure message
	}{
		{"NewMesh with WithLink", func(tb testing.TB) {
			conntest.NewMesh(tb, conntest.NewNetwork(conntest.Link{}), 2, conntest.WithLink(conntest.Link{}))
		}, "WithLink is for NewPair"},
		{"NewMesh with WithCredentials", func(tb testing.TB) {
			conntest.NewMesh(tb, conntest.NewNetwork(conntest.Link{}), 2, conntest.WithCredentials(cred(), cred()))
		}, "WithCredentials is for NewPair"},
		{"NewMesh with too few credentials", func(tb testing.TB) {
			conntest.NewMesh(tb, conntest.NewNetwork(conntest.Link{}), 3, conntest.WithNodeCredentials(cred(), cred()))
		}, "2 credentials for 3 nodes"},
		{"NewMesh with no nodes", func(tb testing.TB) {
			conntest.NewMesh(tb, conntest.NewNetwork(conntest.Link{}), 0)
		}, "0 nodes"},
		{"NewMesh on a taken address", func(tb testing.TB) {
			n := conntest.NewNetwork(conntest.Link{})
			pc, _ := n.ListenPacket("10.0.0.2:4433")
			tb.Cleanup(func() { pc.Close() })
			conntest.NewMesh(tb, n, 2)
		}, "address already in use"},
		{"NewPair with WithNodeCredentials", func(tb testing.TB) {
			conntest.NewPair(tb, conntest.WithNodeCredentials(cred()))
		}, "WithNodeCredentials is for NewMesh"},
		{"NewPair with a nil credential", func(tb testing.TB) {
			conntest.NewPair(tb, conntest.WithCredentials(cred(), nil))
		}, "both credentials are needed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tb := &fatalTB{name: t.Name()}
			tb.run(tc.run)
			if !bytes.Contains([]byte(tb.fatal), []byte(tc.want)) {
				t.Errorf("the test failed with %q, want a message with %q", tb.fatal, tc.want)
			}
		})
	}
}

// fatalTB is the part of testing.TB that NewPair and NewMesh use, and
// records the Fatalf that stops them.
type fatalTB struct {
	testing.TB // nil: any other method panics
	name       string
	fatal      string
	cleanups   []func()
}

func (t *fatalTB) Helper()          {}
func (t *fatalTB) Name() string     { return t.name }
func (t *fatalTB) Cleanup(f func()) { t.cleanups = append(t.cleanups, f) }
func (t *fatalTB) Errorf(format string, args ...any) {
	t.fatal += "error: " + fmt.Sprintf(format, args...)
}
func (t *fatalTB) Fatalf(format string, args ...any) {
	t.fatal = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// run calls f in a goroutine of its own, as testing runs a test, so that
// Fatalf can end it, then runs the cleanups.
func (t *fatalTB) run(f func(testing.TB)) {
	var wg sync.WaitGroup
	wg.Go(func() { f(t) })
	wg.Wait()
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
}
