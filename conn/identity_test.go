package conn_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"testing/synctest"
	"time"

	"github.com/quicconn/quicconn/certverify"
	"github.com/quicconn/quicconn/conn"
	"github.com/quicconn/quicconn/conntest"
	qerr "github.com/quicconn/quicconn/errors"
	"github.com/quicconn/quicconn/stream"
)

// A mesh node for the identity tests: its own Registration, credential and
// socket on a conntest network, inside a synctest bubble.
type idNode struct {
	t     *testing.T
	net   *conntest.Network
	host  string
	reg   *conn.Registration
	cred  *certverify.Credential
	ln    *conn.Listener
	lnPC  *conntest.PacketConn   // the listener's socket
	socks []*conntest.PacketConn // the sockets dial opened
}

var quiet = slog.New(slog.DiscardHandler)

var idConfig = conn.DefaultConfiguration("id-test")

func newIDNode(t *testing.T, n *conntest.Network, host string, endorsers ...ed25519.PrivateKey) *idNode {
	t.Helper()
	cred, err := certverify.GenerateSelfSigned([]string{host}, endorsers)
	if err != nil {
		t.Fatal(err)
	}
	cred.Logger = quiet
	reg := conn.NewRegistration(host)
	t.Cleanup(func() { reg.Close() })
	return &idNode{t: t, net: n, host: host, reg: reg, cred: cred}
}

// listen starts nd's listener on host:4433.
func (nd *idNode) listen(s conn.Settings) {
	nd.t.Helper()
	pc, err := nd.net.ListenPacket(nd.host + ":4433")
	if err != nil {
		nd.t.Fatal(err)
	}
	nd.t.Cleanup(func() { pc.Close() })
	nd.lnPC = pc
	cfg, err := conn.NewConfiguration(idConfig.ALPN, s)
	if err != nil {
		nd.t.Fatal(err)
	}
	if nd.ln, err = conn.Listen(nd.reg, "", cfg, nd.cred, conn.WithPacketConn(pc), conn.WithLogger(quiet)); err != nil {
		nd.t.Fatal(err)
	}
}

// newConn makes a client Connection of nd on a socket of its own, with the
// Configuration for s, not yet started. It may run in a goroutine of its
// own: it reports setup failures with Error.
func (nd *idNode) newConn(s conn.Settings) (*conn.Connection, *conn.Configuration, error) {
	nd.t.Helper()
	pc, err := nd.net.ListenPacket(nd.host + ":0")
	if err != nil {
		nd.t.Error(err)
		return nil, nil, err
	}
	nd.t.Cleanup(func() { pc.Close() })
	nd.socks = append(nd.socks, pc)
	cfg, err := conn.NewConfiguration(idConfig.ALPN, s)
	if err != nil {
		nd.t.Error(err)
		return nil, nil, err
	}
	c, err := conn.New(nd.reg, nd.cred, conn.WithPacketConn(pc), conn.WithLogger(quiet))
	if err != nil {
		nd.t.Error(err)
		return nil, nil, err
	}
	return c, cfg, nil
}

// dial starts a connection from nd to srv's listener and returns it with
// Start's error. It may run in a goroutine of its own.
func (nd *idNode) dial(ctx context.Context, srv *idNode, s conn.Settings) (*conn.Connection, error) {
	nd.t.Helper()
	c, cfg, err := nd.newConn(s)
	if err != nil {
		return nil, err
	}
	return c, c.Start(ctx, cfg, srv.host, 4433)
}

// accept returns the next server connection of nd with its Accept error.
// It may run in a goroutine of its own.
func (nd *idNode) accept(ctx context.Context) (*conn.Connection, error) {
	nd.t.Helper()
	s, err := nd.ln.Accept(ctx)
	if err != nil {
		nd.t.Errorf("Listener.Accept: %v", err)
		return nil, err
	}
	return s, s.Accept(ctx)
}

// socket returns the client socket of nd at addr, opened by dial.
func (nd *idNode) socket(t *testing.T, addr string) *conntest.PacketConn {
	for _, pc := range nd.socks {
		if pc.LocalAddr().String() == addr {
			return pc
		}
	}
	t.Fatalf("no socket of %s at %s", nd.host, addr)
	return nil
}

func (nd *idNode) hash() certverify.CertHash {
	return certverify.HashOf(nd.cred.Certificate.Certificate[0])
}

// pinnedPair returns a network of links l, a server node at 10.0.0.1
// listening with s and a client node at 10.0.0.2, pinned to each other.
func pinnedPair(t *testing.T, l conntest.Link, s conn.Settings) (n *conntest.Network, srv, cli *idNode) {
	t.Helper()
	n = conntest.NewNetwork(l)
	srv, cli = newIDNode(t, n, "10.0.0.1"), newIDNode(t, n, "10.0.0.2")
	trustEachOther(srv, cli)
	srv.listen(s)
	return n, srv, cli
}

// trust pins each node to the others, both ways.
func trustEachOther(nodes ...*idNode) {
	for _, a := range nodes {
		for _, b := range nodes {
			if a != b {
				a.cred.TrustHashes(b.hash())
			}
		}
	}
}

// connectPair connects client to server and returns both sides, Connected.
func connectPair(t *testing.T, ctx context.Context, client, server *idNode) (c, s *conn.Connection) {
	t.Helper()
	return connectPairWith(t, ctx, client, server, conn.Settings{})
}

// connectPairWith is connectPair with the client's settings.
func connectPairWith(t *testing.T, ctx context.Context, client, server *idNode, cs conn.Settings) (c, s *conn.Connection) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		var err error
		c, err = client.dial(ctx, server, cs)
		errc <- err
	}()
	s, err := server.accept(ctx)
	if err != nil {
		t.Fatalf("server Accept: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("client Start: %v", err)
	}
	return c, s
}

// TestRejectedAtStart: a side whose certificate the peer rejects learns it
// from Start (client) or Accept (server), as an ErrBadCertificate with
// Remote set, never as a success followed by a lost connection.
func TestRejectedAtStart(t *testing.T) {
	for _, tt := range []struct {
		name     string
		rejecter string // the side that does not trust the other
		skip     bool   // SkipHandshakeConfirmation on the client
	}{
		{"server rejects the client", "server", false},
		{"client rejects the server", "client", false},
		{"server rejects the client, confirmation skipped", "server", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				n := conntest.NewNetwork(conntest.Link{Delay: 10 * time.Millisecond})
				srv, cli := newIDNode(t, n, "10.0.0.1"), newIDNode(t, n, "10.0.0.2")
				trustEachOther(srv, cli)
				if tt.rejecter == "server" {
					srv.cred.UntrustHashes(cli.hash())
				} else {
					cli.cred.UntrustHashes(srv.hash())
				}
				srv.listen(conn.Settings{})
				ctx := context.Background()
				go srv.ln.Accept(ctx) // the server side's outcome is checked through the client
				c, err := cli.dial(ctx, srv, conn.Settings{SkipHandshakeConfirmation: tt.skip})

				var ce *qerr.CertificateError
				switch {
				case tt.rejecter == "client":
					if !errors.As(err, &ce) || ce.Remote {
						t.Fatalf("Start = %v, want this side's own *CertificateError (Remote false)", err)
					}
				case tt.skip:
					if err != nil {
						t.Fatalf("Start with SkipHandshakeConfirmation = %v, want nil (the rejection comes after)", err)
					}
					<-c.WatchShutdown()
					if !errors.As(c.Err(), &ce) || !ce.Remote {
						t.Fatalf("Err = %v, want a *CertificateError with Remote set", c.Err())
					}
				default:
					if !errors.Is(err, qerr.ErrBadCertificate) || !errors.As(err, &ce) || !ce.Remote {
						t.Fatalf("Start = %v, want ErrBadCertificate with a Remote *CertificateError", err)
					}
					if !errors.Is(err, qerr.ErrConnectionLost) {
						t.Errorf("Start = %v, want it to match ErrConnectionLost too", err)
					}
				}
			})
		})
	}
}

// TestServerLearnsClientRejection: when the client rejects the server's
// certificate, the server's Accept fails with a Remote *CertificateError.
func TestServerLearnsClientRejection(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := conntest.NewNetwork(conntest.Link{Delay: 10 * time.Millisecond})
		srv, cli := newIDNode(t, n, "10.0.0.1"), newIDNode(t, n, "10.0.0.2")
		trustEachOther(srv, cli)
		cli.cred.UntrustHashes(srv.hash())
		srv.listen(conn.Settings{})
		ctx := context.Background()
		go cli.dial(ctx, srv, conn.Settings{})
		_, err := srv.accept(ctx)
		var ce *qerr.CertificateError
		if !errors.Is(err, qerr.ErrBadCertificate) || !errors.As(err, &ce) || !ce.Remote {
			t.Fatalf("server Accept = %v, want ErrBadCertificate with a Remote *CertificateError", err)
		}
	})
}

// TestConfirmationCost: on a 20 ms one-way link, waiting for the server's
// confirmation costs a client that presents a certificate one round trip
// (40 ms), and SkipHandshakeConfirmation saves it.
func TestConfirmationCost(t *testing.T) {
	durations := map[bool]time.Duration{}
	for _, skip := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) {
			_, srv, cli := pinnedPair(t, conntest.Link{Delay: 20 * time.Millisecond}, conn.Settings{})
			ctx := context.Background()
			go srv.accept(ctx)
			start := time.Now()
			if _, err := cli.dial(ctx, srv, conn.Settings{SkipHandshakeConfirmation: skip}); err != nil {
				t.Fatal(err)
			}
			durations[skip] = time.Since(start)
		})
	}
	extra := durations[false] - durations[true]
	t.Logf("Start on a 20 ms link: %v confirmed, %v with SkipHandshakeConfirmation (+%v)", durations[false], durations[true], extra)
	if extra < 35*time.Millisecond || extra > 45*time.Millisecond {
		t.Errorf("confirmation cost %v, want one 40 ms round trip", extra)
	}
}

// TestRevocation: an Untrust call closes, within 100 ms, exactly the live
// connections whose peer no longer passes, by hash and by endorser key, on
// both sides: the revoking side's Err is TrustRevoked, the peer's a close
// with CodeTrustRevoked, and blocked calls on both sides return.
func TestRevocation(t *testing.T) {
	for _, by := range []string{"hash", "endorser key"} {
		t.Run(by, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				n := conntest.NewNetwork(conntest.Link{Delay: 10 * time.Millisecond})
				pub, priv, _ := ed25519.GenerateKey(rand.Reader)
				var srv, bad, good *idNode
				if by == "hash" {
					srv, bad, good = newIDNode(t, n, "10.0.0.1"), newIDNode(t, n, "10.0.0.2"), newIDNode(t, n, "10.0.0.3")
					trustEachOther(srv, bad, good)
				} else {
					// bad is endorsed by the key, good pinned by hash.
					srv, bad, good = newIDNode(t, n, "10.0.0.1"), newIDNode(t, n, "10.0.0.2", priv), newIDNode(t, n, "10.0.0.3")
					srv.cred.TrustPubKeys(pub)
					srv.cred.TrustHashes(good.hash())
					bad.cred.TrustHashes(srv.hash())
					good.cred.TrustHashes(srv.hash())
				}
				srv.listen(conn.Settings{})
				ctx := context.Background()
				badC, badS := connectPair(t, ctx, bad, srv)
				goodC, goodS := connectPair(t, ctx, good, srv)

				// Blocked calls on both sides of the revoked connection.
				blocked := make(chan error, 2)
				go func() { _, err := badC.AcceptInboundStream(ctx); blocked <- err }()
				go func() { _, err := badS.AcceptInboundUniStream(ctx); blocked <- err }()
				synctest.Wait()

				start := time.Now()
				if by == "hash" {
					srv.cred.UntrustHashes(bad.hash())
				} else {
					srv.cred.UntrustPubKeys(pub)
				}
				<-badS.WatchShutdown()
				<-badC.WatchShutdown()
				if d := time.Since(start); d > 100*time.Millisecond {
					t.Errorf("revocation took %v to close both sides, want within 100ms", d)
				}
				for range 2 {
					if err := <-blocked; !errors.Is(err, qerr.ErrConnectionLost) {
						t.Errorf("blocked call returned %v, want ErrConnectionLost", err)
					}
				}
				var ce *qerr.ConnectionError
				if err := badS.Err(); !errors.As(err, &ce) || ce.Reason != qerr.TrustRevoked || ce.Code != conn.CodeTrustRevoked ||
					!errors.Is(err, qerr.ErrBadCertificate) || !errors.Is(err, qerr.ErrConnectionLost) {
					t.Errorf("revoking side Err = %v, want TrustRevoked with code %#x matching ErrBadCertificate and ErrConnectionLost", err, conn.CodeTrustRevoked)
				}
				if err := badC.Err(); !errors.As(err, &ce) || ce.Reason != qerr.ShutdownByPeer || ce.Code != conn.CodeTrustRevoked || !ce.Remote {
					t.Errorf("revoked peer Err = %v, want ShutdownByPeer with code %#x", err, conn.CodeTrustRevoked)
				} else if want := fmt.Sprintf("certificate no longer trusted (sha256 %s)", bad.hash()); ce.Message != want {
					t.Errorf("revoked peer's reason phrase = %q, want %q", ce.Message, want)
				}

				// The trusted peer is untouched and still works.
				if goodC.State() != conn.Connected || goodS.State() != conn.Connected {
					t.Fatalf("trusted peer: client %v, server %v; want both Connected", goodC.State(), goodS.State())
				}
				echo(t, ctx, goodC, goodS)
			})
		})
	}
}

// TestAdmission: trust added to a running listener's credential admits a
// new peer without a new Listen.
func TestAdmission(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := conntest.NewNetwork(conntest.Link{Delay: 5 * time.Millisecond})
		srv, cli := newIDNode(t, n, "10.0.0.1"), newIDNode(t, n, "10.0.0.2")
		cli.cred.TrustHashes(srv.hash())
		srv.cred.TrustHashes(certverify.CertHash{1}) // some other peer: the listener is pinned
		srv.listen(conn.Settings{})
		ctx := context.Background()
		serveAll(ctx, srv)
		if _, err := cli.dial(ctx, srv, conn.Settings{}); !errors.Is(err, qerr.ErrBadCertificate) {
			t.Fatalf("Start before admission = %v, want ErrBadCertificate", err)
		}
		srv.cred.TrustHashes(cli.hash())
		c, err := cli.dial(ctx, srv, conn.Settings{})
		if err != nil {
			t.Fatalf("Start after admission = %v", err)
		}
		if id, ok := c.RemoteIdentity(); !ok || id != srv.hash() {
			t.Errorf("RemoteIdentity = %v, %v; want %v", id, ok, srv.hash())
		}
	})
}

// TestRotation: SetCertificate changes what new handshakes present while a
// connection made with the old certificate goes on; RemoteIdentity and
// Identity follow.
func TestRotation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, srv, cli := pinnedPair(t, conntest.Link{Delay: 5 * time.Millisecond}, conn.Settings{})
		ctx := context.Background()
		oldC, oldS := connectPair(t, ctx, cli, srv)

		renewed, err := certverify.GenerateSelfSigned([]string{srv.host}, nil)
		if err != nil {
			t.Fatal(err)
		}
		newHash := certverify.HashOf(renewed.Certificate.Certificate[0])
		cli.cred.TrustHashes(newHash)
		if err := srv.cred.SetCertificate(renewed.Certificate); err != nil {
			t.Fatal(err)
		}
		if got := srv.cred.Identity(); got != newHash.String() {
			t.Errorf("Identity after SetCertificate = %s, want %s", got, newHash)
		}
		// A resumed session keeps the identity it was made with, so the new
		// connection makes a full handshake.
		newC, _ := connectPairWith(t, ctx, cli, srv, conn.Settings{DisableResumption: true})
		if id, _ := newC.RemoteIdentity(); id != newHash {
			t.Errorf("new connection's RemoteIdentity = %v, want the new certificate %v", id, newHash)
		}
		if id, _ := oldC.RemoteIdentity(); id == newHash {
			t.Error("the old connection's RemoteIdentity changed")
		}
		echo(t, ctx, oldC, oldS)
	})
}

// TestListenWithoutCertificate: a server must present a certificate.
func TestListenWithoutCertificate(t *testing.T) {
	reg := conn.NewRegistration("no-cert")
	defer reg.Close()
	_, err := conn.Listen(reg, "127.0.0.1:0", idConfig, &certverify.Credential{})
	var ce *qerr.ConfigError
	if !errors.As(err, &ce) || ce.Field != "Credential.Certificate" {
		t.Fatalf("Listen without a certificate = %v, want a ConfigError for Credential.Certificate", err)
	}
}

// TestClientWithoutCertificate: a client without a certificate, at a server
// that requires one, is told so at Start.
func TestClientWithoutCertificate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := conntest.NewNetwork(conntest.Link{Delay: 5 * time.Millisecond})
		srv, cli := newIDNode(t, n, "10.0.0.1"), newIDNode(t, n, "10.0.0.2")
		srv.cred.TrustHashes(cli.hash())
		srv.listen(conn.Settings{})
		cli.cred = &certverify.Credential{Logger: quiet}
		cli.cred.TrustHashes(srv.hash())
		ctx := context.Background()
		go srv.ln.Accept(ctx)
		_, err := cli.dial(ctx, srv, conn.Settings{})
		var ce *qerr.CertificateError
		if !errors.As(err, &ce) || !ce.Remote {
			t.Fatalf("Start without a certificate = %v, want a Remote *CertificateError", err)
		}
		if want := "this side's credential has none"; !contains(err.Error(), want) {
			t.Errorf("Start = %q, want it to say %q", err, want)
		}
	})
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// echo proves that c and s still carry a stream.
func echo(t *testing.T, ctx context.Context, c, s *conn.Connection) {
	t.Helper()
	go func() {
		st, err := s.AcceptInboundStream(ctx)
		if err != nil {
			return
		}
		io.Copy(st, st)
		st.Close()
	}()
	st, err := c.OpenOutboundStream(ctx, stream.Bidirectional, false)
	if err != nil {
		t.Fatalf("open stream: %v", err)
	}
	st.Write([]byte("still here"))
	st.Close()
	if b, err := io.ReadAll(st); err != nil || string(b) != "still here" {
		t.Fatalf("echo = %q, %v", b, err)
	}
}
