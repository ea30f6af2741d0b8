package conn_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/quicconn/quicconn/certverify"
	"github.com/quicconn/quicconn/conn"
	"github.com/quicconn/quicconn/conntest"
	qerr "github.com/quicconn/quicconn/errors"
	"github.com/quicconn/quicconn/stream"
)

// TestConnectEcho is the basic path on both networks: handshake with ALPN,
// certificates, addresses, a bidirectional echo, a message stream, a
// datagram, Stats and a clean shutdown seen by both sides.
func TestConnectEcho(t *testing.T) {
	for _, nw := range networks {
		t.Run(nw.name, func(t *testing.T) {
			nw.run(t, func(t *testing.T) {
				on := conn.Settings{DatagramReceiveEnabled: true}
				// A delay gives the in-memory link a round-trip time to measure.
				e := newEnv(t, envOptions{server: on, client: on, net: nw, link: conntest.Link{Delay: time.Millisecond}})
				client, server := e.pair()
				ctx := ctxT(t, 10*time.Second)

				for _, c := range []*conn.Connection{client, server} {
					if got := c.State(); got != conn.Connected {
						t.Errorf("State = %v, want Connected", got)
					}
					if got := c.NegotiatedALPN(); got != alpn {
						t.Errorf("NegotiatedALPN = %q, want %q", got, alpn)
					}
					if c.Err() != nil {
						t.Errorf("Err = %v while Connected", c.Err())
					}
				}
				if got, want := client.RemoteCertificate().Raw, e.serverCred.Certificate.Certificate[0]; !bytes.Equal(got, want) {
					t.Error("client's RemoteCertificate is not the server's certificate")
				}
				if got, want := server.RemoteCertificate().Raw, e.clientCred.Certificate.Certificate[0]; !bytes.Equal(got, want) {
					t.Error("server's RemoteCertificate is not the client's certificate")
				}
				cla, _ := client.LocalAddr()
				cra, _ := client.RemoteAddr()
				sla, _ := server.LocalAddr()
				sra, _ := server.RemoteAddr()
				if cra.String() != e.ln.Addr().String() || sla.String() != e.ln.Addr().String() {
					t.Errorf("client remote %v, server local %v, want listener %v", cra, sla, e.ln.Addr())
				}
				if port(cla) != port(sra) || port(cla) == 0 {
					t.Errorf("client local %v, server sees remote %v", cla, sra)
				}

				// Bidirectional echo.
				go func() {
					s, err := server.AcceptInboundStream(ctx)
					if err != nil {
						t.Error(err)
						return
					}
					io.Copy(s, s)
					s.Close()
				}()
				s, err := client.OpenOutboundStream(ctx, stream.Bidirectional, false)
				if err != nil {
					t.Fatal(err)
				}
				msg := bytes.Repeat([]byte("echo "), 10000)
				go func() { s.Write(msg); s.Close() }()
				got, err := io.ReadAll(s)
				if err != nil || !bytes.Equal(got, msg) {
					t.Fatalf("echo: %d bytes, err %v", len(got), err)
				}

				// Messages.
				ss, err := client.OpenSendStream(ctx)
				if err != nil {
					t.Fatal(err)
				}
				for _, m := range []string{"one", "", "three"} {
					if err := ss.Send(ctx, []byte(m)); err != nil {
						t.Fatal(err)
					}
				}
				ss.Close()
				rs, err := server.AcceptInboundUniStream(ctx)
				if err != nil {
					t.Fatal(err)
				}
				mr := stream.NewMessageReader(rs, 0)
				for _, want := range []string{"one", "", "three"} {
					m, err := mr.ReadMessage()
					if err != nil || string(m) != want {
						t.Fatalf("ReadMessage = %q, %v; want %q", m, err, want)
					}
				}
				if _, err := mr.ReadMessage(); err != io.EOF {
					t.Fatalf("ReadMessage at end = %v, want io.EOF", err)
				}

				// Datagram.
				if err := client.SendDatagram([]byte("dgram")); err != nil {
					t.Fatal(err)
				}
				d, err := server.ReceiveDatagram(ctx)
				if err != nil || string(d) != "dgram" {
					t.Fatalf("ReceiveDatagram = %q, %v", d, err)
				}

				cs, ss2 := client.Stats(), server.Stats()
				if cs.StreamsOpened != 2 || ss2.StreamsAccepted != 2 || cs.DatagramsSent != 1 || ss2.DatagramsReceived != 1 {
					t.Errorf("stream/datagram counters: client %+v server %+v", cs, ss2)
				}
				if cs.BytesSent == 0 || cs.PacketsReceived == 0 || cs.SmoothedRTT == 0 {
					t.Errorf("transport counters empty: %+v", cs)
				}

				if err := client.ShutdownAndWait(ctx, 0x42); err != nil {
					t.Fatalf("ShutdownAndWait: %v", err)
				}
				<-server.WatchShutdown()
				assertReason(t, client.Err(), qerr.ShutdownByLocal, 0x42)
				assertReason(t, server.Err(), qerr.ShutdownByPeer, 0x42)
				if final := client.Stats(); final.BytesSent < cs.BytesSent {
					t.Errorf("Stats after shutdown went back: %+v", final)
				}
			})
		})
	}
}

// TestShutdownWakesEveryWaiter: the connection shutting down wakes, in one
// step, every goroutine blocked on it, each with the connection's error.
func TestShutdownWakesEveryWaiter(t *testing.T) {
	s := conn.Settings{DatagramReceiveEnabled: true, PeerBidiStreamCount: 1}
	beforeConnected := map[string]operation{
		"Start":                    opStart,
		"Accept":                   opAccept,
		"ReceiveRemoteCertificate": opCert,
		"OpenOutboundStream":       opOpen(stream.Bidirectional, false),
		"OpenSendStream":           opOpenSend,
		"AcceptInboundStream":      opAcceptStream,
		"AcceptInboundUniStream":   opAcceptUni,
		"ReceiveDatagram":          opReceiveDatagram,
		"ShutdownAndWait":          opShutdownAndWait,
	}
	connected := map[string]operation{
		"AcceptInboundStream":    opAcceptStream,
		"AcceptInboundUniStream": opAcceptUni,
		"ReceiveDatagram":        opReceiveDatagram,
		"OpenOutboundStream":     opOpen(stream.Bidirectional, false), // at the limit
	}
	// The peer allows one bidirectional stream: use it up.
	atTheLimit := func(v variant) variant {
		return variant{v.name, func(t *testing.T, s conn.Settings) *fixture {
			f := v.enter(t, s)
			if _, err := f.c.OpenOutboundStream(context.Background(), stream.Bidirectional, false); err != nil {
				t.Fatal(err)
			}
			return f
		}}
	}
	tests := []struct {
		state conn.State
		v     variant
		ops   map[string]operation
	}{
		{conn.Open, inOpen[0], map[string]operation{"Accept": opAccept, "ReceiveRemoteCertificate": opCert}},
		{conn.Connecting, inConnecting[0], beforeConnected},
		{conn.Connecting, inConnecting[1], beforeConnected},
		{conn.Connected, atTheLimit(inConnected[0]), connected},
		{conn.Connected, atTheLimit(inConnected[1]), connected},
	}
	for _, tt := range tests {
		t.Run(tt.state.String()+"/"+tt.v.name, bubble(func(t *testing.T) {
			f := tt.v.enter(t, s)
			done := make(map[string]<-chan result)
			for name, op := range tt.ops {
				done[name] = started(func() error { return op(context.Background(), f) })
			}
			watched := started(func() error { <-f.c.WatchShutdown(); return nil })
			synctest.Wait()
			for name, d := range done {
				select {
				case r := <-d:
					t.Fatalf("%s returned %v, want it to wait", name, r.err)
				default:
				}
			}
			ended := time.Now()
			f.end()
			for name, d := range done {
				r := <-d
				if p := connErrorProblem(f.c, r.err, f.endReason, f.endCode); p != "" {
					t.Errorf("%s: %s", name, p)
				}
				if late := r.at.Sub(ended); late != 0 {
					t.Errorf("%s returned %v after the shutdown, want at once", name, late)
				}
			}
			if late := (<-watched).at.Sub(ended); late != 0 {
				t.Errorf("WatchShutdown closed %v after the shutdown, want at once", late)
			}
			if st := f.c.State(); st != conn.ShutdownComplete {
				t.Errorf("State = %v, want ShutdownComplete", st)
			}
		}))
	}
}

// TestLostConnectionErrors: once the connection is lost, every stream and
// datagram operation fails with the connection's own *ConnectionError —
// the value Err returns — however it was lost, whether the operation was
// blocked at the time or came after.
func TestLostConnectionErrors(t *testing.T) {
	dgrams := conn.Settings{DatagramReceiveEnabled: true}
	losses := []struct {
		name   string
		pair   func(t *testing.T) (c, peer *conn.Connection, lose func())
		reason qerr.Reason
		code   uint64
	}{
		{"peer shutdown", func(t *testing.T) (*conn.Connection, *conn.Connection, func()) {
			c, peer := conntest.NewPair(t, conntest.WithSettings(dgrams))
			return c, peer, func() { peer.Shutdown(0x31) }
		}, qerr.ShutdownByPeer, 0x31},
		{"local shutdown", func(t *testing.T) (*conn.Connection, *conn.Connection, func()) {
			c, peer := conntest.NewPair(t, conntest.WithSettings(dgrams))
			return c, peer, func() { c.Shutdown(0x32) }
		}, qerr.ShutdownByLocal, 0x32},
		{"idle timeout", func(t *testing.T) (*conn.Connection, *conn.Connection, func()) {
			s := dgrams
			s.IdleTimeout = time.Second
			c, peer := conntest.NewPair(t, conntest.WithSettings(s))
			return c, peer, func() {} // nothing is sent: the fake clock runs to the timeout
		}, qerr.IdleTimeout, 0},
		{"registration closed", func(t *testing.T) (*conn.Connection, *conn.Connection, func()) {
			e := newEnv(t, envOptions{server: dgrams, client: dgrams, net: inMemory})
			c, peer := e.pair()
			return c, peer, func() { e.reg.Close() }
		}, qerr.ConnectionClosed, 0},
	}
	type streams struct {
		bidi *stream.Stream
		send *stream.SendStream
		c    *conn.Connection
	}
	ops := []struct {
		name    string
		blocked bool // called before the loss, and blocked in it
		call    func(s streams) error
	}{
		{"Read", false, func(s streams) error { return second(s.bidi.Read(make([]byte, 8))) }},
		{"Read/blocked", true, func(s streams) error { return second(s.bidi.Read(make([]byte, 8))) }},
		{"ReadChunk", false, func(s streams) error { return second(s.bidi.ReadChunk(context.Background())) }},
		{"Write", false, func(s streams) error { return second(s.bidi.Write([]byte("x"))) }},
		{"WriteChunks", false, func(s streams) error { return second(s.bidi.WriteChunks([][]byte{[]byte("x")}, false)) }},
		{"Close", false, func(s streams) error { return s.bidi.Close() }},
		{"Send", false, func(s streams) error { return s.send.Send(context.Background(), []byte("m")) }},
		{"ReceiveDatagram", false, func(s streams) error { return second(s.c.ReceiveDatagram(context.Background())) }},
		{"ReceiveDatagram/blocked", true, func(s streams) error { return second(s.c.ReceiveDatagram(context.Background())) }},
	}
	for _, loss := range losses {
		for _, op := range ops {
			t.Run(loss.name+"/"+op.name, bubble(func(t *testing.T) {
				c, _, lose := loss.pair(t)
				ctx := context.Background()
				bidi, err := c.OpenOutboundStream(ctx, stream.Bidirectional, false)
				if err != nil {
					t.Fatal(err)
				}
				send, err := c.OpenSendStream(ctx)
				if err != nil {
					t.Fatal(err)
				}
				s := streams{bidi, send, c}
				var done <-chan result
				if op.blocked {
					done = started(func() error { return op.call(s) })
					if r, waiting := blocked(done); !waiting {
						t.Fatalf("returned %v before the loss", r.err)
					}
				}
				lose()
				<-c.WatchShutdown()
				if !op.blocked {
					done = started(func() error { return op.call(s) })
				}
				assertConnError(t, c, (<-done).err, loss.reason, loss.code)
			}))
		}
	}
}

// TestALPNMismatch: no common protocol fails the handshake on both sides
// with an error that says so.
func TestALPNMismatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, envOptions{net: inMemory})
		c := e.client()
		err := c.Start(context.Background(), conn.DefaultConfiguration("other-proto"), e.host, e.port)
		var ce *qerr.ConnectionError
		if !errors.As(err, &ce) || ce.Reason != qerr.ShutdownByTransport || ce.Code != 0x178 {
			t.Fatalf("Start = %v, want ShutdownByTransport with code 0x178 (no_application_protocol)", err)
		}
		if !strings.Contains(err.Error(), "application protocol") {
			t.Errorf("error %q does not say what failed", err)
		}
		if c.State() != conn.ShutdownComplete {
			t.Errorf("State = %v", c.State())
		}
	})
}

// TestIdleTimeout: a partition longer than the idle timeout ends both sides,
// one idle timeout after the last packet, with reason IdleTimeout, and
// wakes blocked calls.
func TestIdleTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const idle = 300 * time.Millisecond
		s := conn.Settings{IdleTimeout: idle}
		// Without a delay quic-go measures no round-trip time and waits
		// 3 PTOs of its initial estimate (600ms) instead of IdleTimeout.
		e := newEnv(t, envOptions{server: s, client: s, net: inMemory, link: conntest.Link{Delay: time.Millisecond}})
		c, peer, sock := e.pairOn()
		waiting := started(func() error { return second(c.AcceptInboundStream(context.Background())) })
		synctest.Wait() // the handshake's last packets have arrived
		sock.Partition(true)
		start := time.Now()
		for _, x := range []*conn.Connection{c, peer} {
			<-x.WatchShutdown()
			if d := time.Since(start); d != idle {
				t.Errorf("closed %v after the partition, want the idle timeout, %v", d, idle)
			}
			assertReason(t, x.Err(), qerr.IdleTimeout, 0)
		}
		assertConnError(t, c, (<-waiting).err, qerr.IdleTimeout, 0)
	})
}

// TestHandshakeTimeout: a handshake that does not complete within
// Settings.HandshakeTimeout ends then, with reason HandshakeTimeout and an
// error that names the peer's address, and says so when nothing answered.
func TestHandshakeTimeout(t *testing.T) {
	const budget = 200 * time.Millisecond
	s := conn.Settings{HandshakeTimeout: budget}
	t.Run("client, nothing answers", bubble(func(t *testing.T) {
		e := newEnv(t, envOptions{client: s, net: inMemory})
		c := e.client()
		start := time.Now()
		err := c.Start(context.Background(), e.cfg, silentHost, serverPort)
		if d := time.Since(start); d != budget {
			t.Errorf("Start gave up after %v, want the budget, %v", d, budget)
		}
		assertReason(t, err, qerr.HandshakeTimeout, 0)
		assertConnError(t, c, err, qerr.HandshakeTimeout, 0)
		for _, want := range []string{silentHost + ":443", "nothing answered"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("Start = %q, want it to say %q", err, want)
			}
		}
	}))
	t.Run("server, the client goes silent", bubble(func(t *testing.T) {
		e := newEnv(t, envOptions{server: s, net: inMemory, link: conntest.Link{Delay: 10 * time.Millisecond}})
		client, sock := e.clientOn()
		go client.Start(context.Background(), e.cfg, e.host, e.port)
		server, err := e.ln.Accept(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		sock.Partition(true) // before the client's second flight
		start := time.Now()
		err = server.Accept(context.Background())
		// The budget runs from the client's first packet, which arrived
		// when Accept handed the connection out.
		if d := time.Since(start); d != budget {
			t.Errorf("Accept gave up after %v, want the budget, %v", d, budget)
		}
		assertConnError(t, server, err, qerr.HandshakeTimeout, 0)
		if want := sock.LocalAddr().String(); !strings.Contains(err.Error(), want) {
			t.Errorf("Accept = %q, want it to name the client, %s", err, want)
		}
		if strings.Contains(err.Error(), "nothing answered") {
			t.Errorf("Accept = %q: the client did answer", err)
		}
	}))
}

// TestCertificateRejected: a rejected certificate is reported as
// ErrBadCertificate on the rejecting side, which never reaches Connected.
func TestCertificateRejected(t *testing.T) {
	for _, rejecter := range []string{"server", "client"} {
		t.Run(rejecter+" rejects", bubble(func(t *testing.T) {
			e := newEnv(t, envOptions{net: inMemory})
			stranger, err := certverifyStranger()
			if err != nil {
				t.Fatal(err)
			}
			if rejecter == "server" {
				e.clientCred = stranger
				stranger.TrustHashes(hashOf(e.serverCred))
			} else {
				// The client pins a certificate the server does not have.
				e.clientCred.UntrustHashes(hashOf(e.serverCred))
				e.clientCred.TrustHashes(hashOf(stranger))
			}
			ctx := context.Background()
			c := e.client()
			startErr := started(func() error { return c.Start(ctx, e.cfg, e.host, e.port) })
			s, err := e.ln.Accept(ctx)
			if err != nil {
				t.Fatal(err)
			}
			acceptErr := s.Accept(ctx)
			sErr := (<-startErr).err
			if rejecter == "server" {
				if !errors.Is(acceptErr, qerr.ErrBadCertificate) {
					t.Errorf("server Accept = %v, want ErrBadCertificate", acceptErr)
				}
				var certErr *qerr.CertificateError
				if !errors.As(acceptErr, &certErr) {
					t.Errorf("server error %v holds no *CertificateError", acceptErr)
				}
				<-c.WatchShutdown()
				var ce *qerr.ConnectionError
				if !errors.As(c.Err(), &ce) || ce.Code != 0x12a {
					t.Errorf("client error %v, want the bad_certificate alert 0x12a", c.Err())
				}
				if s.RemoteCertificate() != nil {
					t.Error("server stored the rejected certificate")
				}
			} else {
				if !errors.Is(sErr, qerr.ErrBadCertificate) {
					t.Errorf("client Start = %v, want ErrBadCertificate", sErr)
				}
				if acceptErr == nil {
					t.Error("server reached Connected with a client that rejected it")
				}
				if c.RemoteCertificate() != nil {
					t.Error("client stored the rejected certificate")
				}
			}
			rejecting := map[string]*conn.Connection{"server": s, "client": c}[rejecter]
			<-rejecting.WatchShutdown()
			if !errors.Is(rejecting.Err(), qerr.ErrBadCertificate) {
				t.Errorf("%s Err = %v, want ErrBadCertificate", rejecter, rejecting.Err())
			}
		}))
	}
}

// TestRegistration: WaitIdle waits for live connections and listeners;
// Close ends them all, and nothing can be started afterwards.
func TestRegistration(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, envOptions{net: inMemory})
		c, s := e.pair()
		ctx := context.Background()
		short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		start := time.Now()
		if err := e.reg.WaitIdle(short); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("WaitIdle with live connections = %v", err)
		}
		if d := time.Since(start); d != 50*time.Millisecond {
			t.Errorf("WaitIdle returned %v after it began, want at its deadline", d)
		}
		idle := started(func() error { return e.reg.WaitIdle(ctx) })
		if r, waiting := blocked(idle); !waiting {
			t.Fatalf("WaitIdle with live connections returned %v", r.err)
		}
		closing := time.Now()
		e.reg.Close()
		if d := time.Since(closing); d != 0 {
			t.Errorf("Registration.Close took %v, want it to close at once", d)
		}
		if r := <-idle; r.err != nil {
			t.Fatalf("WaitIdle after Close = %v", r.err)
		}
		for _, x := range []*conn.Connection{c, s} {
			if x.State() != conn.ShutdownComplete {
				t.Errorf("State = %v after Registration.Close", x.State())
			}
			assertReason(t, x.Err(), qerr.ConnectionClosed, 0)
		}
		if _, err := e.ln.Accept(ctx); !errors.Is(err, net.ErrClosed) {
			t.Errorf("Listener.Accept after Registration.Close = %v", err)
		}
		if _, err := conn.New(e.reg, e.clientCred); !errors.Is(err, net.ErrClosed) {
			t.Errorf("New after Close = %v", err)
		}
		sock := e.socket(serverHost + ":4433")
		if _, err := conn.Listen(e.reg, "", e.cfg, e.serverCred, conn.WithPacketConn(sock)); !errors.Is(err, net.ErrClosed) {
			t.Errorf("Listen after Close = %v", err)
		}
	})
}

// TestWaitIdle: WaitIdle returns nil once the registration owns nothing
// live, which wins over a context that has ended too, and the context's
// error while something lives.
func TestWaitIdle(t *testing.T) {
	ended := func() context.Context {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		return ctx
	}
	t.Run("idle, context ended", bubble(func(t *testing.T) {
		reg := conn.NewRegistration(t.Name())
		defer reg.Close()
		if err := reg.WaitIdle(ended()); err != nil {
			t.Errorf("WaitIdle = %v, want nil", err)
		}
	}))
	t.Run("idle after Close, context ended", bubble(func(t *testing.T) {
		e := newEnv(t, envOptions{net: inMemory})
		e.pair()
		e.reg.Close()
		if err := e.reg.WaitIdle(ended()); err != nil {
			t.Errorf("WaitIdle = %v, want nil", err)
		}
	}))
	t.Run("live, context ended", bubble(func(t *testing.T) {
		e := newEnv(t, envOptions{net: inMemory})
		if err := e.reg.WaitIdle(ended()); !errors.Is(err, context.Canceled) {
			t.Errorf("WaitIdle with a listener = %v, want context.Canceled", err)
		}
	}))
	t.Run("becomes idle", bubble(func(t *testing.T) {
		e := newEnv(t, envOptions{net: inMemory})
		c, s := e.pair()
		idle := started(func() error { return e.reg.WaitIdle(context.Background()) })
		for _, step := range []func() error{
			func() error { return c.ShutdownAndWait(context.Background(), 0) },
			func() error { <-s.WatchShutdown(); return nil },
		} {
			if r, waiting := blocked(idle); !waiting {
				t.Fatalf("WaitIdle returned %v while something lives", r.err)
			}
			if err := step(); err != nil {
				t.Fatal(err)
			}
		}
		if r, waiting := blocked(idle); !waiting {
			t.Fatalf("WaitIdle returned %v while the listener lives", r.err)
		}
		e.ln.Close()
		if r := <-idle; r.err != nil {
			t.Errorf("WaitIdle = %v, want nil", r.err)
		}
	}))
}

// TestConfigErrors: what cannot make a connection or a listener is refused
// with a *ConfigError naming the field, before any packet is sent and
// without leaving anything live in the registration.
func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name, op, field string
		call            func(reg *conn.Registration, cfg *conn.Configuration, cred *certverify.Credential, pc net.PacketConn) error
	}{
		{"New without a registration", "new", "Registration", func(_ *conn.Registration, _ *conn.Configuration, cred *certverify.Credential, pc net.PacketConn) error {
			return second(conn.New(nil, cred, conn.WithPacketConn(pc)))
		}},
		{"New without a credential", "new", "Credential", func(reg *conn.Registration, _ *conn.Configuration, _ *certverify.Credential, pc net.PacketConn) error {
			return second(conn.New(reg, nil, conn.WithPacketConn(pc)))
		}},
		{"Listen without a registration", "listen", "Registration", func(_ *conn.Registration, cfg *conn.Configuration, cred *certverify.Credential, pc net.PacketConn) error {
			return second(conn.Listen(nil, "", cfg, cred, conn.WithPacketConn(pc)))
		}},
		{"Listen without a credential", "listen", "Credential", func(reg *conn.Registration, cfg *conn.Configuration, _ *certverify.Credential, pc net.PacketConn) error {
			return second(conn.Listen(reg, "", cfg, nil, conn.WithPacketConn(pc)))
		}},
		{"Listen without a certificate", "listen", "Credential.Certificate", func(reg *conn.Registration, cfg *conn.Configuration, _ *certverify.Credential, pc net.PacketConn) error {
			return second(conn.Listen(reg, "", cfg, &certverify.Credential{}, conn.WithPacketConn(pc)))
		}},
		{"Listen at another address than the packet conn's", "listen", "addr", func(reg *conn.Registration, cfg *conn.Configuration, cred *certverify.Credential, pc net.PacketConn) error {
			return second(conn.Listen(reg, serverHost+":9", cfg, cred, conn.WithPacketConn(pc)))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, bubble(func(t *testing.T) {
			n := conntest.NewNetwork(conntest.Link{})
			pc, err := n.ListenPacket(serverHost + ":443")
			if err != nil {
				t.Fatal(err)
			}
			defer pc.Close()
			reg := conn.NewRegistration(t.Name())
			defer reg.Close()
			cred, _ := creds(t)
			cfg := conn.DefaultConfiguration(alpn)

			err = tt.call(reg, cfg, cred, pc)
			var ce *qerr.ConfigError
			var oe *qerr.OpError
			if !errors.As(err, &ce) || ce.Field != tt.field || !errors.As(err, &oe) || oe.Op != tt.op {
				t.Fatalf("%v, want a %s *OpError with a ConfigError for %q", err, tt.op, tt.field)
			}
			if n := pc.Stats().Sent; n != 0 {
				t.Errorf("%d packets sent", n)
			}
			if err := reg.WaitIdle(context.Background()); err != nil {
				t.Errorf("WaitIdle: %v", err)
			}
			// The socket is free: a listener with the right arguments takes it.
			ln, err := conn.Listen(reg, "", cfg, cred, conn.WithPacketConn(pc))
			if err != nil {
				t.Fatalf("Listen after the refusal: %v", err)
			}
			ln.Close()
		}))
	}
}

// TestListenerCloseKeepsConnections: closing a listener stops accepting
// but lets accepted connections go on.
func TestListenerCloseKeepsConnections(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, envOptions{net: inMemory})
		c, s := e.pair()
		ctx := context.Background()
		e.ln.Close()
		if _, err := e.ln.Accept(ctx); !errors.Is(err, net.ErrClosed) {
			t.Errorf("Accept after Close = %v, want net.ErrClosed", err)
		}
		go func() {
			ps, err := s.AcceptInboundStream(ctx)
			if err == nil {
				io.Copy(ps, ps)
				ps.Close()
			}
		}()
		st, err := c.OpenOutboundStream(ctx, stream.Bidirectional, false)
		if err != nil {
			t.Fatal(err)
		}
		st.Write([]byte("still here"))
		st.Close()
		if b, err := io.ReadAll(st); err != nil || string(b) != "still here" {
			t.Fatalf("echo after listener close: %q, %v", b, err)
		}
	})
}

// TestListenerCloseRefusesBacklog: connections nobody accepted are closed
// with the listener, at once rather than at their idle timeout.
func TestListenerCloseRefusesBacklog(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, envOptions{net: inMemory})
		c := e.client()
		if err := c.Start(context.Background(), e.cfg, e.host, e.port); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		e.ln.Close()
		<-c.WatchShutdown()
		if d := time.Since(start); d != 0 {
			t.Errorf("closed %v after the listener, want at once", d)
		}
		// Closed by the server before the handshake was confirmed, the
		// application close travels as the transport's APPLICATION_ERROR.
		var ce *qerr.ConnectionError
		if !errors.As(c.Err(), &ce) || !(ce.Reason == qerr.ShutdownByPeer || ce.Reason == qerr.ShutdownByTransport && ce.Code == 0xc) {
			t.Errorf("client error %v, want the server's close", c.Err())
		}
	})
}

// TestSharedSocket: connections of one registration that bind the
// listener's address share its socket.
func TestSharedSocket(t *testing.T) {
	e := newEnv(t, envOptions{})
	reg2 := conn.NewRegistration("peer")
	defer reg2.Close()
	// A second node listens; the first node dials it from its own listening
	// address, so both connections use one socket per node.
	sc, cc := e.serverCred, e.clientCred
	ln2, err := conn.Listen(reg2, "127.0.0.1:0", e.cfg, cc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t, 5*time.Second)
	c, err := conn.New(e.reg, sc, conn.WithLocalAddr(e.ln.Addr().String()))
	if err != nil {
		t.Fatal(err)
	}
	ua := ln2.Addr().(*net.UDPAddr)
	go func() {
		s, err := ln2.Accept(ctx)
		if err == nil {
			s.Accept(ctx)
		}
	}()
	if err := c.Start(ctx, e.cfg, "127.0.0.1", uint16(ua.Port)); err != nil {
		t.Fatal(err)
	}
	la, _ := c.LocalAddr()
	if la.String() != e.ln.Addr().String() {
		t.Errorf("client local address %v, want the listener's %v", la, e.ln.Addr())
	}
	c.ShutdownAndWait(ctx, 0)
}

func TestNewConfiguration(t *testing.T) {
	tests := []struct {
		name  string
		alpn  []string
		s     conn.Settings
		field string // "" for valid
	}{
		{"defaults", []string{"a"}, conn.Settings{}, ""},
		{"no ALPN", nil, conn.Settings{}, "ALPN"},
		{"empty ALPN", []string{"a", ""}, conn.Settings{}, "ALPN[1]"},
		{"long ALPN", []string{strings.Repeat("x", 256)}, conn.Settings{}, "ALPN[0]"},
		{"255-byte ALPN", []string{strings.Repeat("x", 255)}, conn.Settings{}, ""},
		{"negative idle", []string{"a"}, conn.Settings{IdleTimeout: -1}, "Settings.IdleTimeout"},
		{"negative handshake", []string{"a"}, conn.Settings{HandshakeTimeout: -1}, "Settings.HandshakeTimeout"},
		{"negative keepalive", []string{"a"}, conn.Settings{KeepAlive: -time.Second}, "Settings.KeepAlive"},
		{"negative bidi", []string{"a"}, conn.Settings{PeerBidiStreamCount: -1}, "Settings.PeerBidiStreamCount"},
		{"negative uni", []string{"a"}, conn.Settings{PeerUniStreamCount: -1}, "Settings.PeerUniStreamCount"},
		{"negative queue", []string{"a"}, conn.Settings{DatagramQueueLen: -1}, "Settings.DatagramQueueLen"},
		{"negative message", []string{"a"}, conn.Settings{MaxMessageSize: -1}, "Settings.MaxMessageSize"},
		{"sub-millisecond idle", []string{"a"}, conn.Settings{IdleTimeout: 30}, "Settings.IdleTimeout"},
		{"sub-millisecond handshake", []string{"a"}, conn.Settings{HandshakeTimeout: time.Microsecond}, "Settings.HandshakeTimeout"},
		{"sub-millisecond keepalive", []string{"a"}, conn.Settings{KeepAlive: 999 * time.Microsecond}, "Settings.KeepAlive"},
		{"keepalive equal to idle", []string{"a"}, conn.Settings{IdleTimeout: time.Second, KeepAlive: time.Second}, "Settings.KeepAlive"},
		{"keepalive beyond the default idle", []string{"a"}, conn.Settings{KeepAlive: time.Minute}, "Settings.KeepAlive"},
		{"keepalive below the default idle", []string{"a"}, conn.Settings{KeepAlive: 10 * time.Second}, ""},
		{"message above 2^32-1", []string{"a"}, conn.Settings{MaxMessageSize: 1 << 32}, "Settings.MaxMessageSize"},
		{"message of 2^32-1", []string{"a"}, conn.Settings{MaxMessageSize: 1<<32 - 1}, ""},
		{"connection window below stream window", []string{"a"}, conn.Settings{StreamReceiveWindow: 1 << 21, ConnectionReceiveWindow: 1 << 20}, "Settings.ConnectionReceiveWindow"},
		{"stream window alone", []string{"a"}, conn.Settings{StreamReceiveWindow: 64 << 20}, ""},
		{"everything set", []string{"a", "b"}, conn.Settings{IdleTimeout: time.Second, HandshakeTimeout: time.Second, KeepAlive: 500 * time.Millisecond,
			PeerBidiStreamCount: 5, PeerUniStreamCount: 5, DatagramReceiveEnabled: true, DatagramQueueLen: 5,
			StreamReceiveWindow: 1 << 20, ConnectionReceiveWindow: 1 << 21, MaxMessageSize: 1 << 10}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := conn.NewConfiguration(tt.alpn, tt.s)
			if tt.field == "" {
				if err != nil || cfg == nil {
					t.Fatalf("NewConfiguration = %v, %v", cfg, err)
				}
				return
			}
			var ce *qerr.ConfigError
			if !errors.As(err, &ce) || ce.Field != tt.field {
				t.Fatalf("NewConfiguration = %v, want a ConfigError for %s", err, tt.field)
			}
		})
	}
}

func TestStateString(t *testing.T) {
	for s, want := range map[conn.State]string{conn.Open: "Open", conn.Connecting: "Connecting", conn.Connected: "Connected",
		conn.Shutdown: "Shutdown", conn.ShutdownComplete: "ShutdownComplete", conn.State(9): "State(9)"} {
		if s.String() != want {
			t.Errorf("%d.String() = %q, want %q", s, s.String(), want)
		}
	}
}

// TestListenerBacklog: a burst of clients larger than quic-go's own accept
// queue (32) completes its handshakes while the application has not called
// Accept yet, and every connection is then handed out.
func TestListenerBacklog(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := ctxT(t, 20*time.Second)
	const n = 64
	clients := make([]*conn.Connection, n)
	errs := make(chan error, n)
	for i := range clients {
		clients[i] = e.client()
		go func() { errs <- clients[i].Start(ctx, e.cfg, e.host, e.port) }()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatalf("Start during the burst: %v", err)
		}
	}
	for i := range n {
		s, err := e.ln.Accept(ctx)
		if err != nil {
			t.Fatalf("Accept %d: %v", i, err)
		}
		if err := s.Accept(ctx); err != nil {
			t.Fatalf("handshake %d: %v", i, err)
		}
	}
	// The clients are still connected: none was refused after its handshake.
	for _, c := range clients {
		if c.State() != conn.Connected {
			t.Errorf("client %v, want Connected", c.State())
		}
	}
}
