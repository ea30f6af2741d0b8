package conntest_test

// QUIC on a Network: raw quic-go with one server, clients on other hosts
// and a NAT rebinding the server follows; and a rebinding under a quicconn
// connection.

import (
	"context"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/quicconn/quicconn/certverify"
	"github.com/quicconn/quicconn/conn"
	"github.com/quicconn/quicconn/conntest"
)

func TestQUICOnNetwork(t *testing.T) {
	bothClocks(t, func(t *testing.T) {
		n := conntest.NewNetwork(conntest.Link{Delay: 5 * time.Millisecond, Loss: 0.01, Seed: 3})
		n.SetLink("10.0.0.1", "10.0.0.3", conntest.Link{Delay: 20 * time.Millisecond, Jitter: 2 * time.Millisecond, Seed: 4})

		srvPC := listen(t, n, "10.0.0.1:443")
		srvTr := &quic.Transport{Conn: srvPC}
		defer srvTr.Close()
		ln, err := srvTr.Listen(serverTLS(), &quic.Config{})
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()

		// The server echoes every stream, and hands out its connections so
		// that the test can see their remote addresses.
		accepted := make(chan *quic.Conn, 2)
		var wg sync.WaitGroup
		defer func() {
			cancel() // ends the server's goroutines
			wg.Wait()
		}()
		wg.Go(func() {
			for {
				c, err := ln.Accept(ctx)
				if err != nil {
					return
				}
				accepted <- c
				wg.Go(func() {
					for {
						s, err := c.AcceptStream(ctx)
						if err != nil {
							return
						}
						io.Copy(s, s)
						s.Close()
					}
				})
			}
		})

		type client struct {
			pc *conntest.PacketConn
			c  *quic.Conn
			sc *quic.Conn // the server's side
		}
		var clients []client
		for _, addr := range []string{"10.0.0.2:0", "10.0.0.3:0"} {
			pc := listen(t, n, addr)
			tr := &quic.Transport{Conn: pc}
			defer tr.Close()
			c, err := tr.Dial(ctx, srvPC.LocalAddr(), clientTLS(), &quic.Config{})
			if err != nil {
				t.Fatalf("dial from %s: %v", addr, err)
			}
			defer c.CloseWithError(0, "")
			echo(t, ctx, c, "hello from "+addr)
			sc := <-accepted
			if sc.RemoteAddr().String() != pc.LocalAddr().String() {
				t.Errorf("the server sees %v, want %v", sc.RemoteAddr(), pc.LocalAddr())
			}
			clients = append(clients, client{pc, c, sc})
		}

		// A NAT in front of the first client rebinds it to another host.
		cl := clients[0]
		if err := cl.pc.Rebind("10.0.0.9:7000"); err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			// quic-go validates the new path and then moves to it.
			echo(t, ctx, cl.c, "after the rebinding #"+string(rune('0'+i)))
		}
		if got := cl.sc.RemoteAddr().String(); got != "10.0.0.9:7000" {
			t.Errorf("after the rebinding the server sees %v, want 10.0.0.9:7000", got)
		}
		echo(t, ctx, clients[1].c, "the other client is unaffected")
		if st := n.LinkStats("10.0.0.9", "10.0.0.1"); st.Delivered == 0 {
			t.Errorf("nothing went from the rebound address to the server: %+v", st)
		}
	})
}

// echo sends msg on a new stream of c and checks that it comes back.
func echo(t *testing.T, ctx context.Context, c *quic.Conn, msg string) {
	t.Helper()
	s, err := c.OpenStreamSync(ctx)
	if err != nil {
		t.Fatalf("open stream: %v", err)
	}
	s.Write([]byte(msg))
	s.Close()
	got, err := io.ReadAll(s)
	if err != nil || string(got) != msg {
		t.Fatalf("echo = %q, %v; want %q", got, err, msg)
	}
}

func TestRebindSeenByQuicconnServer(t *testing.T) {
	bothClocks(t, func(t *testing.T) {
		n := conntest.NewNetwork(conntest.Link{Delay: 10 * time.Millisecond, Loss: 0.01, Seed: 8})
		srvPC, cliPC := listen(t, n, "10.0.0.1:443"), listen(t, n, "10.0.0.2:0")
		sc, cc := mustGenerate(t, "server", nil), mustGenerate(t, "client", nil)
		sc.TrustHashes(certverify.HashOf(cc.Certificate.Certificate[0]))
		cc.TrustHashes(certverify.HashOf(sc.Certificate.Certificate[0]))
		reg := conn.NewRegistration(t.Name())
		defer reg.Close()
		cfg := conn.DefaultConfiguration("rebind")
		ln, err := conn.Listen(reg, "", cfg, sc, conn.WithPacketConn(srvPC))
		if err != nil {
			t.Fatal(err)
		}
		client, err := conn.New(reg, cc, conn.WithPacketConn(cliPC))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		started := make(chan error, 1)
		go func() { started <- client.Start(ctx, cfg, "10.0.0.1", 443) }()
		server, err := ln.Accept(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := server.Accept(ctx); err != nil {
			t.Fatal(err)
		}
		if err := <-started; err != nil {
			t.Fatal(err)
		}
		go serveEcho(server)
		echoOn(t, client, "before the rebinding")

		if err := cliPC.Rebind("10.0.0.9:0"); err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			echoOn(t, client, fmt.Sprintf("after the rebinding #%d", i))
		}
		if client.State() != conn.Connected || server.State() != conn.Connected {
			t.Errorf("after the rebinding: client %v, server %v; want both Connected", client.State(), server.State())
		}
		up, down := n.LinkStats("10.0.0.9", "10.0.0.1"), n.LinkStats("10.0.0.1", "10.0.0.9")
		if up.Delivered == 0 || down.Delivered == 0 {
			t.Errorf("from the new address to the server %+v, back %+v: want packets both ways", up, down)
		}
		if addr, err := server.RemoteAddr(); err == nil {
			t.Logf("the server's Connection.RemoteAddr after the rebinding: %v", addr)
		}
	})
}
