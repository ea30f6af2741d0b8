package conn_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

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
			on := conn.Settings{DatagramReceiveEnabled: true}
			e := newEnv(t, envOptions{server: on, client: on, net: nw})
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
	}
}

func port(a net.Addr) int {
	if ua, ok := a.(*net.UDPAddr); ok {
		return ua.Port
	}
	return 0
}

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

// TestOpenState covers the Open column of the behaviour table.
func TestOpenState(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.client()
	short := func() context.Context { return ctxT(t, 50*time.Millisecond) }
	if c.State() != conn.Open {
		t.Fatalf("State = %v", c.State())
	}
	notStarted := []struct {
		op  string
		err func() error
	}{
		{"OpenOutboundStream", func() error { _, err := c.OpenOutboundStream(short(), stream.Bidirectional, false); return err }},
		{"OpenSendStream", func() error { _, err := c.OpenSendStream(short()); return err }},
		{"AcceptInboundStream", func() error { _, err := c.AcceptInboundStream(short()); return err }},
		{"AcceptInboundUniStream", func() error { _, err := c.AcceptInboundUniStream(short()); return err }},
		{"ReceiveDatagram", func() error { _, err := c.ReceiveDatagram(short()); return err }},
		{"SendDatagram", func() error { return c.SendDatagram([]byte("x")) }},
		{"Shutdown", func() error { return c.Shutdown(1) }},
		{"ShutdownAndWait", func() error { return c.ShutdownAndWait(short(), 1) }},
		{"LocalAddr", func() error { _, err := c.LocalAddr(); return err }},
		{"RemoteAddr", func() error { _, err := c.RemoteAddr(); return err }},
	}
	for _, tt := range notStarted {
		if err := tt.err(); !errors.Is(err, qerr.ErrNotStarted) {
			t.Errorf("%s in Open = %v, want ErrNotStarted", tt.op, err)
		}
	}
	waits := []struct {
		op  string
		err func(context.Context) error
	}{
		{"Accept", func(ctx context.Context) error { return c.Accept(ctx) }},
		{"ReceiveRemoteCertificate", func(ctx context.Context) error { _, err := c.ReceiveRemoteCertificate(ctx); return err }},
	}
	for _, tt := range waits {
		if err := tt.err(short()); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s in Open = %v, want to wait until the deadline", tt.op, err)
		}
	}
	select {
	case <-c.WatchShutdown():
		t.Error("WatchShutdown closed in Open")
	default:
	}
	if c.MaxDatagramSize() != 0 || c.RemoteCertificate() != nil || c.NegotiatedALPN() != "" || c.Err() != nil {
		t.Error("Open connection reports handshake results")
	}
	if c.State() != conn.Open {
		t.Errorf("State after all that = %v, want Open", c.State())
	}
}

// stuckClient returns a client that stays Connecting: its server end of a
// pipe never answers.
func stuckClient(t *testing.T, reg *conn.Registration, s conn.Settings) (*conn.Connection, chan error) {
	t.Helper()
	a, b := conntest.NewPipe(conntest.Link{})
	t.Cleanup(func() { a.Close(); b.Close() })
	_, cc := creds(t)
	c, err := conn.New(reg, cc, conn.WithPacketConn(a))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := conn.NewConfiguration([]string{alpn}, s)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- c.Start(context.Background(), cfg, "127.0.0.2", 1) }()
	for c.State() == conn.Open {
		// Start moves the state to Connecting before it does anything
		// that can block, so this ends after a few scheduler rounds.
		time.Sleep(time.Millisecond)
	}
	return c, errc
}

// TestConnectingState covers the Connecting column, and shutdown waking
// every goroutine blocked in it.
func TestConnectingState(t *testing.T) {
	reg := conn.NewRegistration(t.Name())
	c, startErr := stuckClient(t, reg, conn.Settings{DatagramReceiveEnabled: true})
	if got := c.State(); got != conn.Connecting {
		t.Fatalf("State = %v, want Connecting", got)
	}
	if err := c.SendDatagram([]byte("x")); !errors.Is(err, qerr.ErrNotStarted) {
		t.Errorf("SendDatagram in Connecting = %v, want ErrNotStarted", err)
	}
	if err := c.Shutdown(1); !errors.Is(err, qerr.ErrNotStarted) {
		t.Errorf("Shutdown in Connecting = %v, want ErrNotStarted", err)
	}
	if a, err := c.LocalAddr(); err != nil || a == nil {
		t.Errorf("LocalAddr in Connecting = %v, %v", a, err)
	}
	if a, err := c.RemoteAddr(); err != nil || a.String() != "127.0.0.2:1" {
		t.Errorf("RemoteAddr in Connecting = %v, %v", a, err)
	}

	// Every waiting operation, first against its own context...
	waiting := map[string]func(context.Context) error{
		"Start":                    func(ctx context.Context) error { return c.Start(ctx, conn.DefaultConfiguration(alpn), "127.0.0.2", 1) },
		"Accept":                   func(ctx context.Context) error { return c.Accept(ctx) },
		"ReceiveRemoteCertificate": func(ctx context.Context) error { _, err := c.ReceiveRemoteCertificate(ctx); return err },
		"OpenOutboundStream": func(ctx context.Context) error {
			_, err := c.OpenOutboundStream(ctx, stream.Bidirectional, false)
			return err
		},
		"OpenSendStream":         func(ctx context.Context) error { _, err := c.OpenSendStream(ctx); return err },
		"AcceptInboundStream":    func(ctx context.Context) error { _, err := c.AcceptInboundStream(ctx); return err },
		"AcceptInboundUniStream": func(ctx context.Context) error { _, err := c.AcceptInboundUniStream(ctx); return err },
		"ReceiveDatagram":        func(ctx context.Context) error { _, err := c.ReceiveDatagram(ctx); return err },
		"ShutdownAndWait":        func(ctx context.Context) error { return c.ShutdownAndWait(ctx, 1) },
	}
	for op, f := range waiting {
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() { errc <- f(ctx) }()
		time.Sleep(5 * time.Millisecond) // let it block
		cancel()
		select {
		case err := <-errc:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("%s in Connecting, cancelled: %v, want context.Canceled", op, err)
			}
		case <-time.After(100 * time.Millisecond):
			t.Fatalf("%s in Connecting did not return within 100ms of cancellation", op)
		}
	}
	if got := c.State(); got != conn.Connecting {
		t.Fatalf("State = %v after cancelled waits, want Connecting", got)
	}

	// ... then all at once against the connection's shutdown.
	var wg sync.WaitGroup
	results := make(map[string]error)
	var mu sync.Mutex
	for op, f := range waiting {
		wg.Go(func() {
			err := f(context.Background())
			mu.Lock()
			results[op] = err
			mu.Unlock()
		})
	}
	wg.Go(func() { <-c.WatchShutdown() })
	time.Sleep(20 * time.Millisecond)
	within(t, time.Second, "Registration.Close", func() { reg.Close() })
	within(t, 100*time.Millisecond, "the blocked calls", wg.Wait)
	for op, err := range results {
		if !errors.Is(err, qerr.ErrConnectionLost) {
			t.Errorf("%s woken by shutdown: %v, want ConnectionLost", op, err)
		}
	}
	if err := <-startErr; !errors.Is(err, qerr.ErrConnectionLost) && !errors.Is(err, net.ErrClosed) {
		t.Errorf("first Start = %v", err)
	}
	assertReason(t, c.Err(), qerr.ConnectionClosed, 0)
	if got := c.State(); got != conn.ShutdownComplete {
		t.Errorf("State = %v, want ShutdownComplete", got)
	}
}

// TestServerConnecting: a server connection handed out by Listener.Accept
// starts in Connecting; operations wait for Connected.
func TestServerConnecting(t *testing.T) {
	// With a 100 ms one-way delay the client's second flight reaches the
	// server 200 ms after the server hands the connection out; cutting the
	// pipe at once stalls the handshake with the server in Connecting.
	e := newEnv(t, envOptions{net: networks[1], link: conntest.Link{Delay: 100 * time.Millisecond}})
	ctx := ctxT(t, 10*time.Second)
	client := e.client()
	startErr := make(chan error, 1)
	go func() { startErr <- client.Start(ctx, e.cfg, e.host, e.port) }()
	server, err := e.ln.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e.pipe.Partition(true)
	if got := server.State(); got != conn.Connecting {
		t.Fatalf("server %v when handed out, want Connecting", got)
	}
	if err := server.SendDatagram(nil); !errors.Is(err, qerr.ErrNotStarted) {
		t.Errorf("SendDatagram = %v, want ErrNotStarted", err)
	}
	if err := server.Shutdown(0); !errors.Is(err, qerr.ErrNotStarted) {
		t.Errorf("Shutdown = %v, want ErrNotStarted", err)
	}
	opened := make(chan error, 1)
	go func() {
		s, err := server.OpenOutboundStream(ctx, stream.Unidirectional, false)
		if err == nil {
			_, err = s.Write([]byte("after connected"))
			s.Close()
		}
		opened <- err
	}()
	select {
	case err := <-opened:
		t.Fatalf("OpenOutboundStream returned in Connecting: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	e.pipe.Partition(false)
	if err := server.Accept(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-opened; err != nil {
		t.Fatalf("OpenOutboundStream after Connected: %v", err)
	}
	if err := <-startErr; err != nil {
		t.Fatal(err)
	}
	rs, err := client.AcceptInboundUniStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(rs); string(b) != "after connected" {
		t.Errorf("read %q", b)
	}
}

// TestShutdownStates covers the Shutdown / ShutdownComplete column, for a
// local and a peer shutdown.
func TestShutdownStates(t *testing.T) {
	for _, local := range []bool{true, false} {
		name := map[bool]string{true: "local", false: "peer"}[local]
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, envOptions{server: conn.Settings{DatagramReceiveEnabled: true}, client: conn.Settings{DatagramReceiveEnabled: true}})
			c, peer := e.pair()
			ctx := ctxT(t, 5*time.Second)
			if local {
				if err := c.Shutdown(7); err != nil {
					t.Fatal(err)
				}
				if got := c.State(); got != conn.Shutdown && got != conn.ShutdownComplete {
					t.Errorf("State right after Shutdown = %v", got)
				}
				assertReason(t, c.Err(), qerr.ShutdownByLocal, 7)
			} else {
				if err := peer.ShutdownAndWait(ctx, 7); err != nil {
					t.Fatal(err)
				}
			}
			<-c.WatchShutdown()
			if local {
				assertReason(t, c.Err(), qerr.ShutdownByLocal, 7)
			} else {
				assertReason(t, c.Err(), qerr.ShutdownByPeer, 7)
			}
			lost := map[string]error{
				"Start":                  c.Start(ctx, e.cfg, e.host, e.port),
				"Accept":                 c.Accept(ctx),
				"OpenOutboundStream":     second(c.OpenOutboundStream(ctx, stream.Bidirectional, false)),
				"OpenSendStream":         second(c.OpenSendStream(ctx)),
				"AcceptInboundStream":    second(c.AcceptInboundStream(ctx)),
				"AcceptInboundUniStream": second(c.AcceptInboundUniStream(ctx)),
				"ReceiveDatagram":        second(c.ReceiveDatagram(ctx)),
				"SendDatagram":           c.SendDatagram([]byte("x")),
			}
			for op, err := range lost {
				if !errors.Is(err, qerr.ErrConnectionLost) {
					t.Errorf("%s after shutdown = %v, want ConnectionLost", op, err)
				}
			}
			if err := c.Shutdown(8); err != nil {
				t.Errorf("Shutdown again = %v, want nil", err)
			}
			if err := c.Shutdown(1 << 62); !errors.Is(err, qerr.ErrInvalidCode) {
				t.Errorf("Shutdown(1<<62) = %v, want ErrInvalidCode", err)
			}
			err := c.ShutdownAndWait(ctx, 8)
			if local && err != nil {
				t.Errorf("ShutdownAndWait after local shutdown = %v, want nil", err)
			}
			if !local && !errors.Is(err, qerr.ErrConnectionLost) {
				t.Errorf("ShutdownAndWait after peer shutdown = %v, want ConnectionLost", err)
			}
			if cert, err := c.ReceiveRemoteCertificate(ctx); err != nil || cert == nil {
				t.Errorf("ReceiveRemoteCertificate after shutdown = %v, %v; want the stored certificate", cert, err)
			}
			if c.MaxDatagramSize() != 0 {
				t.Error("MaxDatagramSize after shutdown is not 0")
			}
			if got := c.State(); got != conn.ShutdownComplete {
				t.Errorf("State = %v", got)
			}
		})
	}
}

func second[T any](_ T, err error) error { return err }

// TestConnectedWaits: in Connected, accepting and receiving wait for the
// peer, and each returns within 100 ms of its context ending.
func TestConnectedWaits(t *testing.T) {
	s := conn.Settings{DatagramReceiveEnabled: true, PeerBidiStreamCount: 1}
	e := newEnv(t, envOptions{server: s, client: s})
	c, peer := e.pair()
	ctx := ctxT(t, 5*time.Second)
	// Use up the peer's limit of one bidirectional stream.
	if _, err := c.OpenOutboundStream(ctx, stream.Bidirectional, false); err != nil {
		t.Fatal(err)
	}
	ops := map[string]func(context.Context) error{
		"AcceptInboundStream":    func(ctx context.Context) error { _, err := c.AcceptInboundStream(ctx); return err },
		"AcceptInboundUniStream": func(ctx context.Context) error { _, err := c.AcceptInboundUniStream(ctx); return err },
		"ReceiveDatagram":        func(ctx context.Context) error { _, err := c.ReceiveDatagram(ctx); return err },
		"OpenOutboundStream": func(ctx context.Context) error {
			_, err := c.OpenOutboundStream(ctx, stream.Bidirectional, false)
			return err
		},
		"ShutdownAndWait(peer)": func(ctx context.Context) error { return peer.ShutdownAndWait(ctx, 0) },
	}
	for op, f := range ops {
		if op == "ShutdownAndWait(peer)" {
			continue // it does not wait in Connected: it shuts down
		}
		for _, kind := range []string{"cancel", "deadline"} {
			var ctx context.Context
			var cancel context.CancelFunc
			if kind == "cancel" {
				ctx, cancel = context.WithCancel(context.Background())
			} else {
				ctx, cancel = context.WithTimeout(context.Background(), 20*time.Millisecond)
			}
			type result struct {
				err error
				at  time.Time
			}
			done := make(chan result, 1)
			go func() {
				err := f(ctx)
				done <- result{err, time.Now()}
			}()
			ended := time.Now().Add(20 * time.Millisecond) // the deadline
			if kind == "cancel" {
				time.Sleep(20 * time.Millisecond)
				ended = time.Now()
				cancel()
			}
			select {
			case r := <-done:
				want := context.Canceled
				if kind == "deadline" {
					want = context.DeadlineExceeded
				}
				if !errors.Is(r.err, want) {
					t.Errorf("%s (%s) = %v, want %v", op, kind, r.err, want)
				}
				if late := r.at.Sub(ended); late > 100*time.Millisecond {
					t.Errorf("%s (%s) returned %v after its context ended, want within 100ms", op, kind, late)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("%s (%s) did not return after its context ended", op, kind)
			}
			cancel()
		}
	}
	if c.State() != conn.Connected {
		t.Fatalf("State = %v", c.State())
	}
}

// TestPeerShutdownWakes: the connection shutting down wakes every goroutine
// blocked on it.
func TestPeerShutdownWakes(t *testing.T) {
	s := conn.Settings{DatagramReceiveEnabled: true, PeerBidiStreamCount: 1}
	e := newEnv(t, envOptions{server: s, client: s})
	c, peer := e.pair()
	ctx := ctxT(t, 5*time.Second)
	if _, err := c.OpenOutboundStream(ctx, stream.Bidirectional, false); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	errs := map[string]error{}
	record := func(op string, err error) { mu.Lock(); errs[op] = err; mu.Unlock() }
	wg.Go(func() { _, err := c.AcceptInboundStream(ctx); record("AcceptInboundStream", err) })
	wg.Go(func() { _, err := c.AcceptInboundUniStream(ctx); record("AcceptInboundUniStream", err) })
	wg.Go(func() { _, err := c.ReceiveDatagram(ctx); record("ReceiveDatagram", err) })
	wg.Go(func() {
		_, err := c.OpenOutboundStream(ctx, stream.Bidirectional, false)
		record("OpenOutboundStream", err)
	})
	wg.Go(func() { <-c.WatchShutdown() })
	time.Sleep(20 * time.Millisecond)
	if err := peer.Shutdown(0x99); err != nil {
		t.Fatal(err)
	}
	within(t, 2*time.Second, "blocked calls after peer shutdown", wg.Wait)
	for op, err := range errs {
		var ce *qerr.ConnectionError
		if !errors.As(err, &ce) || ce.Reason != qerr.ShutdownByPeer || ce.Code != 0x99 {
			t.Errorf("%s = %v, want ShutdownByPeer 0x99", op, err)
		}
	}
}

// TestStreamLimit: the peer allows one stream; a second open waits, or
// fails with ErrLimitReached when failOnBlocked, and the waiting open
// succeeds once the first stream is done.
func TestStreamLimit(t *testing.T) {
	for _, typ := range []stream.Type{stream.Bidirectional, stream.Unidirectional} {
		t.Run(typ.String(), func(t *testing.T) {
			s := conn.Settings{PeerBidiStreamCount: 1, PeerUniStreamCount: 1}
			e := newEnv(t, envOptions{server: s, client: s})
			c, peer := e.pair()
			ctx := ctxT(t, 5*time.Second)
			first, err := c.OpenOutboundStream(ctx, typ, true)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.OpenOutboundStream(ctx, typ, true); !errors.Is(err, qerr.ErrLimitReached) {
				t.Fatalf("second open with failOnBlocked = %v, want ErrLimitReached", err)
			}
			second := make(chan error, 1)
			go func() {
				_, err := c.OpenOutboundStream(ctx, typ, false)
				second <- err
			}()
			select {
			case err := <-second:
				t.Fatalf("second open did not wait: %v", err)
			case <-time.After(50 * time.Millisecond):
			}
			// Finish the first stream on both sides.
			first.Write([]byte("x"))
			first.Close()
			if typ == stream.Bidirectional {
				ps, err := peer.AcceptInboundStream(ctx)
				if err != nil {
					t.Fatal(err)
				}
				io.ReadAll(ps)
				ps.Close()
				io.ReadAll(first)
			} else {
				ps, err := peer.AcceptInboundUniStream(ctx)
				if err != nil {
					t.Fatal(err)
				}
				io.ReadAll(ps)
			}
			select {
			case err := <-second:
				if err != nil {
					t.Fatalf("waiting open: %v", err)
				}
			case <-time.After(2 * time.Second):
				t.Fatal("waiting open did not succeed after the first stream was done")
			}
		})
	}
}

// TestDatagrams: denied when the peer did not enable them or this side did
// not, too big above MaxDatagramSize, accepted at exactly MaxDatagramSize.
func TestDatagrams(t *testing.T) {
	on := conn.Settings{DatagramReceiveEnabled: true}
	t.Run("peer disabled", func(t *testing.T) {
		e := newEnv(t, envOptions{client: on})
		c, _ := e.pair()
		if err := c.SendDatagram([]byte("x")); !errors.Is(err, qerr.ErrDatagramDenied) {
			t.Errorf("SendDatagram = %v, want ErrDatagramDenied", err)
		}
		if n := c.MaxDatagramSize(); n != 0 {
			t.Errorf("MaxDatagramSize = %d, want 0", n)
		}
	})
	t.Run("local disabled", func(t *testing.T) {
		e := newEnv(t, envOptions{server: on})
		c, _ := e.pair()
		if err := c.SendDatagram([]byte("x")); !errors.Is(err, qerr.ErrDatagramDenied) {
			t.Errorf("SendDatagram = %v, want ErrDatagramDenied", err)
		}
		if _, err := c.ReceiveDatagram(ctxT(t, time.Second)); !errors.Is(err, qerr.ErrDatagramDenied) {
			t.Errorf("ReceiveDatagram = %v, want ErrDatagramDenied", err)
		}
	})
	t.Run("sizes", func(t *testing.T) {
		e := newEnv(t, envOptions{server: on, client: on})
		c, peer := e.pair()
		max := c.MaxDatagramSize()
		if max < 1000 || max > 1500 {
			t.Fatalf("MaxDatagramSize = %d", max)
		}
		err := c.SendDatagram(make([]byte, max+1))
		var tooBig *qerr.DatagramTooBigError
		if !errors.As(err, &tooBig) || !errors.Is(err, qerr.ErrDatagramTooBig) || tooBig.Max != max {
			t.Fatalf("SendDatagram(max+1) = %v, want DatagramTooBigError{Max: %d}", err, max)
		}
		full := bytes.Repeat([]byte{0xd}, max)
		if err := c.SendDatagram(full); err != nil {
			t.Fatalf("SendDatagram(max) = %v", err)
		}
		got, err := peer.ReceiveDatagram(ctxT(t, 5*time.Second))
		if err != nil || !bytes.Equal(got, full) {
			t.Fatalf("ReceiveDatagram = %d bytes, %v", len(got), err)
		}
	})
	t.Run("queue bound", func(t *testing.T) {
		s := conn.Settings{DatagramReceiveEnabled: true, DatagramQueueLen: 4}
		e := newEnv(t, envOptions{server: s, client: s})
		c, peer := e.pair()
		ctx := ctxT(t, 5*time.Second)
		const n = 20
		for i := range n {
			if err := c.SendDatagram([]byte{byte(i)}); err != nil {
				t.Fatal(err)
			}
		}
		// A stream after the datagrams tells when they have all arrived.
		s1, _ := c.OpenOutboundStream(ctx, stream.Unidirectional, false)
		s1.Close()
		ps, err := peer.AcceptInboundUniStream(ctx)
		if err != nil {
			t.Fatal(err)
		}
		io.ReadAll(ps)
		deadline := time.Now().Add(2 * time.Second)
		for peer.Stats().DatagramsReceived < n && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		st := peer.Stats()
		if st.DatagramsReceived != n || st.DatagramsQueued != 4 || st.DatagramsDropped != n-4 {
			t.Fatalf("Stats = %+v, want %d received, 4 queued, %d dropped", st, n, n-4)
		}
		for i := n - 4; i < n; i++ {
			d, err := peer.ReceiveDatagram(ctx)
			if err != nil || len(d) != 1 || d[0] != byte(i) {
				t.Fatalf("ReceiveDatagram = %v, %v; want [%d] (oldest dropped first)", d, err, i)
			}
		}
	})
}

// TestALPNMismatch: no common protocol fails the handshake on both sides
// with an error that says so.
func TestALPNMismatch(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := ctxT(t, 5*time.Second)
	c := e.client()
	err := c.Start(ctx, conn.DefaultConfiguration("other-proto"), e.host, e.port)
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
}

// TestIdleTimeout: a partition longer than the idle timeout ends both sides
// with reason IdleTimeout and wakes blocked calls.
func TestIdleTimeout(t *testing.T) {
	s := conn.Settings{IdleTimeout: 300 * time.Millisecond}
	e := newEnv(t, envOptions{server: s, client: s, net: networks[1]})
	c, peer := e.pair()
	blocked := make(chan error, 1)
	go func() { _, err := c.AcceptInboundStream(context.Background()); blocked <- err }()
	e.pipe.Partition(true)
	start := time.Now()
	for _, x := range []*conn.Connection{c, peer} {
		select {
		case <-x.WatchShutdown():
		case <-time.After(300*time.Millisecond + 2*time.Second):
			t.Fatal("no idle timeout within IdleTimeout + 2s")
		}
		var ce *qerr.ConnectionError
		if errors.As(x.Err(), &ce) {
			t.Logf("err %#v", ce.Err)
		}
		assertReason(t, x.Err(), qerr.IdleTimeout, 0)
	}
	t.Logf("idle timeout after %v", time.Since(start))
	if err := <-blocked; !errors.Is(err, qerr.ErrConnectionLost) {
		t.Errorf("blocked AcceptInboundStream = %v", err)
	}
}

// TestHandshakeTimeout: a server that never answers ends the handshake with
// reason HandshakeTimeout after Settings.HandshakeTimeout.
func TestHandshakeTimeout(t *testing.T) {
	reg := conn.NewRegistration(t.Name())
	defer reg.Close()
	c, startErr := stuckClient(t, reg, conn.Settings{HandshakeTimeout: 200 * time.Millisecond})
	start := time.Now()
	var err error
	select {
	case err = <-startErr:
	case <-time.After(2 * time.Second):
		t.Fatal("Start did not give up")
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("handshake timeout after %v, budget 200ms", d)
	}
	assertReason(t, err, qerr.HandshakeTimeout, 0)
	assertReason(t, c.Err(), qerr.HandshakeTimeout, 0)
}

// TestStartCancel: cancelling Start's context abandons the handshake.
func TestStartCancel(t *testing.T) {
	reg := conn.NewRegistration(t.Name())
	defer reg.Close()
	a, b := conntest.NewPipe(conntest.Link{})
	defer a.Close()
	defer b.Close()
	_, cc := creds(t)
	c, _ := conn.New(reg, cc, conn.WithPacketConn(a))
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- c.Start(ctx, conn.DefaultConfiguration(alpn), "127.0.0.2", 1) }()
	time.Sleep(20 * time.Millisecond)
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Start = %v, want context.Canceled", err)
		}
	case <-time.After(100 * time.Millisecond):
		t.Fatal("Start did not return within 100ms of cancellation")
	}
	<-c.WatchShutdown()
	assertReason(t, c.Err(), qerr.ConnectionClosed, 0)
}

// TestCertificateRejected: a rejected certificate is reported as
// ErrBadCertificate on the rejecting side, which never reaches Connected.
func TestCertificateRejected(t *testing.T) {
	for _, rejecter := range []string{"server", "client"} {
		t.Run(rejecter+" rejects", func(t *testing.T) {
			e := newEnv(t, envOptions{})
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
			ctx := ctxT(t, 5*time.Second)
			c := e.client()
			startErr := make(chan error, 1)
			go func() { startErr <- c.Start(ctx, e.cfg, e.host, e.port) }()
			s, err := e.ln.Accept(ctx)
			if err != nil {
				t.Fatal(err)
			}
			acceptErr := s.Accept(ctx)
			sErr := <-startErr
			if rejecter == "server" {
				if !errors.Is(acceptErr, qerr.ErrBadCertificate) {
					t.Errorf("server Accept = %v, want ErrBadCertificate", acceptErr)
				}
				var certErr *qerr.CertificateError
				if !errors.As(acceptErr, &certErr) {
					t.Errorf("server error %v holds no *CertificateError", acceptErr)
				}
				// The client may have completed its side of the handshake
				// (see Start's doc); it loses the connection right after.
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
		})
	}
}

// TestRegistration: WaitIdle waits for live connections and listeners;
// Close ends them all, and nothing can be started afterwards.
func TestRegistration(t *testing.T) {
	e := newEnv(t, envOptions{})
	c, s := e.pair()
	ctx := ctxT(t, 5*time.Second)
	if err := e.reg.WaitIdle(ctxT(t, 50*time.Millisecond)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitIdle with live connections = %v", err)
	}
	idle := make(chan error, 1)
	go func() { idle <- e.reg.WaitIdle(ctx) }()
	within(t, 2*time.Second, "Registration.Close", func() { e.reg.Close() })
	if err := <-idle; err != nil {
		t.Fatalf("WaitIdle after Close = %v", err)
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
	if _, err := conn.Listen(e.reg, "127.0.0.1:0", e.cfg, e.serverCred); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Listen after Close = %v", err)
	}
}

// TestListenerCloseKeepsConnections: closing a listener stops accepting
// but lets accepted connections go on.
func TestListenerCloseKeepsConnections(t *testing.T) {
	e := newEnv(t, envOptions{})
	c, s := e.pair()
	ctx := ctxT(t, 5*time.Second)
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

// TestListenerCloseRefusesBacklog: connections nobody accepted are closed
// with the listener.
func TestListenerCloseRefusesBacklog(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := ctxT(t, 10*time.Second)
	c := e.client()
	if err := c.Start(ctx, e.cfg, e.host, e.port); err != nil {
		t.Fatal(err)
	}
	e.ln.Close()
	select {
	case <-c.WatchShutdown():
	case <-time.After(5 * time.Second):
		t.Fatal("a connection left in the backlog outlived the listener")
	}
	// Closed by the server before the handshake was confirmed, the
	// application close travels as the transport's APPLICATION_ERROR.
	var ce *qerr.ConnectionError
	if !errors.As(c.Err(), &ce) || !(ce.Reason == qerr.ShutdownByPeer || ce.Reason == qerr.ShutdownByTransport && ce.Code == 0xc) {
		t.Errorf("client error %v, want the server's close", c.Err())
	}
}
