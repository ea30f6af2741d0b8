package conn_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"runtime"
	"testing"
	"testing/synctest"
	"time"

	"github.com/quicconn/quicconn/conn"
	"github.com/quicconn/quicconn/conntest"
	qerr "github.com/quicconn/quicconn/errors"
	"github.com/quicconn/quicconn/stream"
)

// serveAll accepts every connection of srv until its registration closes.
func serveAll(ctx context.Context, srv *idNode) {
	go func() {
		for {
			s, err := srv.ln.Accept(ctx)
			if err != nil {
				return
			}
			go s.Accept(ctx)
		}
	}()
}

// TestResumption: a client's second connection to a server resumes the
// first one's TLS session; a client of another Registration does not, and
// neither does one with DisableResumption on either side.
func TestResumption(t *testing.T) {
	for _, tt := range []struct {
		name                 string
		serverOff, clientOff bool
		otherRegistration    bool
		wantResumed          bool
	}{
		{"second connection resumed", false, false, false, true},
		{"another registration has no ticket", false, false, true, false},
		{"DisableResumption on the client", false, true, false, false},
		{"DisableResumption on the server", true, false, false, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				_, srv, cli := pinnedPair(t, conntest.Link{Delay: 5 * time.Millisecond}, conn.Settings{DisableResumption: tt.serverOff})
				ctx := context.Background()
				serveAll(ctx, srv)
				cs := conn.Settings{DisableResumption: tt.clientOff}
				first, err := cli.dial(ctx, srv, cs)
				if err != nil {
					t.Fatal(err)
				}
				if first.Resumed() {
					t.Fatal("the first connection was resumed")
				}
				// A reconnect: the ticket came with the handshake's last
				// flight, which closing waits past.
				first.ShutdownAndWait(ctx, 0)
				if tt.otherRegistration {
					other := conn.NewRegistration("other")
					t.Cleanup(func() { other.Close() })
					cli.reg = other
				}
				second, err := cli.dial(ctx, srv, cs)
				if err != nil {
					t.Fatal(err)
				}
				if got := second.Resumed(); got != tt.wantResumed {
					t.Errorf("second connection Resumed = %v, want %v", got, tt.wantResumed)
				}
				if id, ok := second.RemoteIdentity(); !ok || id != srv.hash() {
					t.Errorf("resumed RemoteIdentity = %v, %v; want the server's %v", id, ok, srv.hash())
				}
			})
		})
	}
}

// TestResumptionHonoursRevocation: a peer whose trust was removed after its
// ticket was issued cannot come back on the ticket, in either direction.
func TestResumptionHonoursRevocation(t *testing.T) {
	for _, revoker := range []string{"server", "client"} {
		t.Run(revoker+" revokes", func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				_, srv, cli := pinnedPair(t, conntest.Link{Delay: 5 * time.Millisecond}, conn.Settings{})
				ctx := context.Background()
				serveAll(ctx, srv)
				first, err := cli.dial(ctx, srv, conn.Settings{})
				if err != nil {
					t.Fatal(err)
				}
				if revoker == "server" {
					srv.cred.UntrustHashes(cli.hash())
				} else {
					cli.cred.UntrustHashes(srv.hash())
				}
				<-first.WatchShutdown()
				again, err := cli.dial(ctx, srv, conn.Settings{})
				if !errors.Is(err, qerr.ErrBadCertificate) {
					t.Fatalf("Start after revocation = %v (resumed %v), want ErrBadCertificate", err, again.Resumed())
				}
			})
		})
	}
}

// echoServer answers every bidirectional stream of every connection of srv
// with what it read, while srv's listener runs.
func echoServer(ctx context.Context, srv *idNode) {
	go func() {
		for {
			s, err := srv.ln.Accept(ctx)
			if err != nil {
				return
			}
			go func() {
				for {
					st, err := s.AcceptInboundStream(ctx)
					if err != nil {
						return
					}
					go func() {
						b, _ := io.ReadAll(st)
						st.Write(b)
						st.Close()
					}()
				}
			}()
			go s.Accept(ctx)
		}
	}()
}

// request sends msg on a new stream of c and returns when the first byte of
// the answer arrives, with the whole answer.
func request(ctx context.Context, c *conn.Connection, msg string) (string, error) {
	st, err := c.OpenOutboundStream(ctx, stream.Bidirectional, false)
	if err != nil {
		return "", err
	}
	if _, err := st.WriteChunks([][]byte{[]byte(msg)}, true); err != nil {
		return "", err
	}
	b, err := io.ReadAll(st)
	return string(b), err
}

// TestZeroRTT: on a 20 ms one-way link, a request sent with StartEarly on a
// resumed session is answered a round trip sooner than after Start, and
// Used0RTT says the server took it. The figures: time from the start of the
// connection to the answer, full / resumed / 0-RTT.
func TestZeroRTT(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := conn.Settings{Allow0RTT: true}
		_, srv, cli := pinnedPair(t, conntest.Link{Delay: 20 * time.Millisecond}, s)
		ctx := context.Background()
		echoServer(ctx, srv)
		timed := func(early bool) (time.Duration, *conn.Connection) {
			t.Helper()
			c, cfg, err := cli.newConn(s)
			if err != nil {
				t.FailNow()
			}
			begin := time.Now()
			start := c.Start
			if early {
				start = c.StartEarly
			}
			if err := start(ctx, cfg, srv.host, 4433); err != nil {
				t.Fatal(err)
			}
			if got, err := request(ctx, c, "ping"); err != nil || got != "ping" {
				t.Fatalf("request = %q, %v", got, err)
			}
			took := time.Since(begin)
			if err := c.Start(ctx, cfg, srv.host, 4433); err != nil { // waits for Connected
				t.Fatal(err)
			}
			return took, c
		}
		full, _ := timed(false)
		resumed, rc := timed(false)
		zero, zc := timed(true)
		t.Logf("first answer on a 20 ms link: full %v, resumed %v, 0-RTT %v", full, resumed, zero)
		if !rc.Resumed() {
			t.Error("second connection not resumed")
		}
		if !zc.Used0RTT() || !zc.Resumed() {
			t.Errorf("StartEarly connection: Used0RTT %v, Resumed %v; want both", zc.Used0RTT(), zc.Resumed())
		}
		if resumed-zero < 40*time.Millisecond {
			t.Errorf("0-RTT answered after %v, resumed after %v: want at least one 40 ms round trip sooner", zero, resumed)
		}
	})
}

// TestZeroRTTRejected: after a server restart (new ticket keys), early data
// fails with Err0RTTRejected, and a new stream on the same Connection works
// once it is Connected.
func TestZeroRTTRejected(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := conn.Settings{Allow0RTT: true}
		_, srv, cli := pinnedPair(t, conntest.Link{Delay: 20 * time.Millisecond}, s)
		ctx := context.Background()
		echoServer(ctx, srv)
		if _, err := cli.dial(ctx, srv, s); err != nil { // the ticket
			t.Fatal(err)
		}
		synctest.Wait() // the ticket may come a packet after what confirmed the handshake

		// The restart: a new registration and listener with the same
		// identity, whose TLS session ticket keys are new.
		srv.reg.Close()
		srv.lnPC.Close()
		srv.reg = conn.NewRegistration("restarted")
		t.Cleanup(func() { srv.reg.Close() })
		srv.listen(s)
		echoServer(ctx, srv)

		c, cfg, err := cli.newConn(s)
		if err != nil {
			t.FailNow()
		}
		if err := c.StartEarly(ctx, cfg, srv.host, 4433); err != nil {
			t.Fatal(err)
		}
		if c.State() != conn.Connecting {
			t.Fatalf("after StartEarly with a ticket: %v, want Connecting with early keys", c.State())
		}
		if _, err := request(ctx, c, "early"); !errors.Is(err, qerr.Err0RTTRejected) {
			t.Fatalf("early request = %v, want Err0RTTRejected", err)
		}
		if err := c.Start(ctx, cfg, srv.host, 4433); err != nil { // waits for Connected
			t.Fatal(err)
		}
		if c.Used0RTT() {
			t.Error("Used0RTT after a rejection")
		}
		if got, err := request(ctx, c, "again"); err != nil || got != "again" {
			t.Fatalf("request after the rejection = %q, %v", got, err)
		}
	})
}

// transfer4MiB sends 4 MiB on a new stream of c, calling midway when half
// is written, and returns whether the server read it intact.
func transfer4MiB(t *testing.T, ctx context.Context, c, s *conn.Connection, midway func()) {
	t.Helper()
	data := make([]byte, 4<<20)
	for i := range data {
		data[i] = byte(i*7 + i>>11)
	}
	want := sha256.Sum256(data)
	got := make(chan [32]byte, 1)
	go func() {
		st, err := s.AcceptInboundStream(ctx)
		if err != nil {
			t.Error(err)
			got <- [32]byte{}
			return
		}
		h := sha256.New()
		if _, err := io.Copy(h, st); err != nil {
			t.Error(err)
		}
		var sum [32]byte
		h.Sum(sum[:0])
		got <- sum
	}()
	st, err := c.OpenOutboundStream(ctx, stream.Bidirectional, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Write(data[:len(data)/2]); err != nil {
		t.Fatal(err)
	}
	midway()
	if _, err := st.Write(data[len(data)/2:]); err != nil {
		t.Fatal(err)
	}
	st.Close()
	if sum := <-got; sum != want {
		t.Fatalf("server read SHA-256 %x, want %x", sum, want)
	}
}

// TestMigrate: a 4 MiB transfer survives a client's Migrate to a new socket
// mid-flight, and a NAT rebinding of the client's address, intact; LocalAddr
// and Stats follow.
func TestMigrate(t *testing.T) {
	for _, how := range []string{"Migrate", "NAT rebinding"} {
		t.Run(how, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				n, srv, cli := pinnedPair(t, conntest.Link{Delay: 5 * time.Millisecond, Bandwidth: 50 << 20}, conn.Settings{})
				ctx := context.Background()
				c, s := connectPair(t, ctx, cli, srv)
				before, _ := c.LocalAddr()
				// Addresses are read while the path changes: -race checks
				// that they come from state that the switch does not race.
				reads := make(chan struct{})
				go func() {
					defer close(reads)
					for range 200 {
						c.LocalAddr()
						c.RemoteAddr()
						s.RemoteAddr()
						runtime.Gosched()
					}
				}()
				defer func() { <-reads }()
				transfer4MiB(t, ctx, c, s, func() {
					switch how {
					case "Migrate":
						pc, err := n.ListenPacket("10.0.0.3:0")
						if err != nil {
							t.Fatal(err)
						}
						t.Cleanup(func() { pc.Close() })
						if err := c.Migrate(ctx, conn.WithPacketConn(pc)); err != nil {
							t.Fatalf("Migrate: %v", err)
						}
						if after, _ := c.LocalAddr(); after.String() != pc.LocalAddr().String() {
							t.Errorf("LocalAddr after Migrate = %v, want %v (was %v)", after, pc.LocalAddr(), before)
						}
						if st := c.Stats(); st.PathsValidated != 1 || st.Migrations != 1 {
							t.Errorf("Stats: %d paths validated, %d migrations; want 1, 1", st.PathsValidated, st.Migrations)
						}
					case "NAT rebinding":
						// The client's socket is the first one opened on its host
						// after the listener's: find it through LocalAddr.
						la, _ := c.LocalAddr()
						pc := cli.socket(t, la.String())
						if err := pc.Rebind("10.0.0.9:40000"); err != nil {
							t.Fatal(err)
						}
					}
				})
				if c.State() != conn.Connected || s.State() != conn.Connected {
					t.Errorf("after the transfer: client %v, server %v", c.State(), s.State())
				}
				want := "10.0.0.9:40000" // the NAT's new address
				if how == "Migrate" {
					la, _ := c.LocalAddr()
					want = la.String()
				}
				if got, _ := s.RemoteAddr(); got.String() != want {
					t.Errorf("server's RemoteAddr after the move = %v, want %v (was %v)", got, want, before)
				}
			})
		})
	}
}

// TestMigrateStates: Migrate works only on a Connected client.
func TestMigrateStates(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n, srv, cli := pinnedPair(t, conntest.Link{Delay: 5 * time.Millisecond}, conn.Settings{})
		ctx := context.Background()

		open, _ := conn.New(cli.reg, cli.cred)
		if err := open.Migrate(ctx); !errors.Is(err, qerr.ErrNotStarted) {
			t.Errorf("Migrate on Open = %v, want ErrNotStarted", err)
		}
		c, s := connectPair(t, ctx, cli, srv)
		if err := s.Migrate(ctx); !errors.Is(err, conn.ErrServerMigration) {
			t.Errorf("Migrate on a server = %v, want ErrServerMigration", err)
		}
		c.ShutdownAndWait(ctx, 0)
		if err := c.Migrate(ctx); !errors.Is(err, qerr.ErrConnectionLost) {
			t.Errorf("Migrate after shutdown = %v, want the connection's error", err)
		}

		// Connecting: a server that never answers.
		silent, _ := n.ListenPacket("10.0.0.5:4433")
		defer silent.Close()
		pc, _ := n.ListenPacket("10.0.0.2:0")
		defer pc.Close()
		connecting, _ := conn.New(cli.reg, cli.cred, conn.WithPacketConn(pc))
		sctx, cancel := context.WithCancel(ctx)
		go connecting.Start(sctx, idConfig, "10.0.0.5", 4433)
		synctest.Wait()
		if err := connecting.Migrate(ctx); !errors.Is(err, qerr.ErrNotStarted) {
			t.Errorf("Migrate on Connecting = %v, want ErrNotStarted", err)
		}
		cancel()
	})
}

// TestPriority: over a bandwidth-limited link, an urgent stream opened after
// a bulk one finishes first.
func TestPriority(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		client, server := conntest.NewPair(t, conntest.WithLink(conntest.Link{Delay: 5 * time.Millisecond, Bandwidth: 1 << 20}))
		ctx := context.Background()
		finished := make(chan string, 2)
		go func() {
			for range 2 {
				st, err := server.AcceptInboundStream(ctx)
				if err != nil {
					return
				}
				go func() {
					b, _ := io.ReadAll(st)
					finished <- string(b[:4])
				}()
			}
		}()
		payload := func(tag string) []byte { return append([]byte(tag), make([]byte, 1<<20)...) }
		bulk, _ := client.OpenOutboundStream(ctx, stream.Bidirectional, false)
		bulk.SetPriority(7, false)
		go bulk.WriteChunks([][]byte{payload("bulk")}, true)
		synctest.Wait()
		urgent, _ := client.OpenOutboundStream(ctx, stream.Bidirectional, false)
		urgent.SetPriority(0, false)
		go urgent.WriteChunks([][]byte{payload("urgt")}, true)
		if first := <-finished; first != "urgt" {
			t.Errorf("first stream to finish: %q, want the urgent one", first)
		}
		<-finished
	})
}
