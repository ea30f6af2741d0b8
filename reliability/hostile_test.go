package reliability_test

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"runtime"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/quicconn/quicconn/conn"
	"github.com/quicconn/quicconn/conntest"
	qerr "github.com/quicconn/quicconn/errors"
	"github.com/quicconn/quicconn/stream"
)

// sendRaw opens a unidirectional stream from c, writes b on it and, if fin,
// closes it.
func sendRaw(t *testing.T, c *conn.Connection, b []byte, fin bool) {
	t.Helper()
	s, err := c.OpenOutboundStream(context.Background(), stream.Unidirectional, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.WriteChunks([][]byte{b}, fin); err != nil {
		t.Fatal(err)
	}
}

// TestHostileMessageLengths sends hostile length prefixes on real streams:
// each is refused with the documented error, and reading it allocates next
// to nothing.
func TestHostileMessageLengths(t *testing.T) {
	huge := binary.BigEndian.AppendUint32(nil, 0xFFFF_FFFF) // 4 GiB - 1, the largest a prefix holds
	cases := []struct {
		name    string
		payload []byte
		fin     bool
		max     int // the reader's bound
		check   func(t *testing.T, err error)
	}{
		{"4GiB prefix is MessageTooLarge before any allocation", append(huge, make([]byte, 100)...), false, 0,
			func(t *testing.T, err error) {
				var tl *qerr.MessageTooLargeError
				if !errors.As(err, &tl) || tl.Size != 0xFFFF_FFFF || tl.Max != conn.DefaultMaxMessageSize {
					t.Fatalf("err = %v, want *MessageTooLargeError{Size: 0xFFFFFFFF, Max: %d}", err, conn.DefaultMaxMessageSize)
				}
			}},
		{"4GiB prefix under an unlimited bound then FIN is UnexpectedEOF, allocating only what arrived", append(huge, make([]byte, 100)...), true, 1 << 62,
			func(t *testing.T, err error) {
				if !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("err = %v, want io.ErrUnexpectedEOF", err)
				}
			}},
		{"truncated body is UnexpectedEOF", append(binary.BigEndian.AppendUint32(nil, 100), make([]byte, 50)...), true, 0,
			func(t *testing.T, err error) {
				if !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("err = %v, want io.ErrUnexpectedEOF", err)
				}
			}},
		{"truncated prefix is UnexpectedEOF", []byte{0, 0}, true, 0,
			func(t *testing.T, err error) {
				if !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("err = %v, want io.ErrUnexpectedEOF", err)
				}
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := newPair(t, pairConfig{})
				sendRaw(t, p.client, tc.payload, tc.fin)
				rs, err := p.server.AcceptInboundUniStream(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				synctest.Wait() // everything sent has arrived
				mr := stream.NewMessageReader(rs, tc.max)
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				msg, err := mr.ReadMessage()
				runtime.ReadMemStats(&after)
				if msg != nil {
					t.Fatalf("ReadMessage returned %d bytes", len(msg))
				}
				tc.check(t, err)
				if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 256<<10 {
					t.Errorf("ReadMessage allocated %d bytes, want < 256 KiB", alloc)
				}
				if _, err2 := mr.ReadMessage(); !errors.Is(err2, errors.Unwrap(err)) && err2.Error() != err.Error() {
					t.Errorf("second ReadMessage = %v, want the same error %v", err2, err)
				}
			})
		})
	}
}

// TestHostileDatagramFlood floods a peer that never reads datagrams over a
// lossless link: its queue stays within DatagramQueueLen and every drop is
// counted.
func TestHostileDatagramFlood(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const qlen, flood = 16, 5000
		p := newPair(t, pairConfig{settings: conn.Settings{DatagramReceiveEnabled: true, DatagramQueueLen: qlen}})
		b := make([]byte, 1000)
		var maxQueued uint64
		for i := range flood {
			if err := p.client.SendDatagram(b); err != nil {
				t.Fatalf("SendDatagram %d: %v", i, err)
			}
			if i%100 == 99 {
				synctest.Wait()
				maxQueued = max(maxQueued, p.server.Stats().DatagramsQueued)
			}
		}
		time.Sleep(time.Second) // the sender paces: let its queue drain
		synctest.Wait()
		st := p.server.Stats()
		maxQueued = max(maxQueued, st.DatagramsQueued)
		t.Logf("server stats after a %d-datagram flood: received %d, dropped %d, queued %d (max seen %d); client sent %d; link %+v",
			flood, st.DatagramsReceived, st.DatagramsDropped, st.DatagramsQueued, maxQueued, p.client.Stats().DatagramsSent, p.a.Stats())
		if maxQueued > qlen {
			t.Errorf("DatagramsQueued reached %d, bound %d", maxQueued, qlen)
		}
		if st.DatagramsDropped == 0 {
			t.Errorf("no drop counted")
		}
		if st.DatagramsReceived != st.DatagramsDropped+st.DatagramsQueued {
			t.Errorf("received %d != dropped %d + queued %d", st.DatagramsReceived, st.DatagramsDropped, st.DatagramsQueued)
		}
		// The link is lossless and delivered every packet, so every datagram
		// the client sent reached the server: each must be counted there,
		// queued or dropped. One that vanishes uncounted is a drop nobody
		// can see.
		if sent := p.client.Stats().DatagramsSent; st.DatagramsReceived != sent {
			t.Errorf("client sent %d datagrams over a lossless link (link %+v), server counted %d received: %d dropped without being counted",
				sent, p.a.Stats(), st.DatagramsReceived, sent-st.DatagramsReceived)
		}
	})
}

// TestHostileStreamHoarding: a peer that opens streams and never sends on
// them is bounded by the stream limits: its extra opens fail with
// ErrLimitReached or wait, until a stream is released.
func TestHostileStreamHoarding(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const bidi, uni = 4, 2
		p := newPair(t, pairConfig{settings: conn.Settings{PeerBidiStreamCount: bidi, PeerUniStreamCount: uni}})
		ctx := context.Background()
		var held []*stream.Stream
		for i := range bidi {
			s, err := p.client.OpenOutboundStream(ctx, stream.Bidirectional, true)
			if err != nil {
				t.Fatalf("open bidi %d within the limit: %v", i, err)
			}
			held = append(held, s)
		}
		for i := range uni {
			if _, err := p.client.OpenSendStream(ctx); err != nil {
				t.Fatalf("open uni %d within the limit: %v", i, err)
			}
		}
		if _, err := p.client.OpenOutboundStream(ctx, stream.Bidirectional, true); !errors.Is(err, qerr.ErrLimitReached) {
			t.Errorf("bidi open beyond the limit, failOnBlocked: err = %v, want ErrLimitReached", err)
		}
		if _, err := p.client.OpenOutboundStream(ctx, stream.Unidirectional, true); !errors.Is(err, qerr.ErrLimitReached) {
			t.Errorf("uni open beyond the limit, failOnBlocked: err = %v, want ErrLimitReached", err)
		}
		short, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		if _, err := p.client.OpenSendStream(short); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("OpenSendStream beyond the limit: err = %v, want DeadlineExceeded", err)
		}
		// Streams nobody sent on are invisible to the server.
		short2, cancel2 := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel2()
		if s, err := p.server.AcceptInboundStream(short2); err == nil {
			t.Errorf("server accepted stream %d that carried nothing", s.ID())
		}

		// A blocked open proceeds once the server releases one stream.
		opened := make(chan error, 1)
		go func() {
			_, err := p.client.OpenOutboundStream(ctx, stream.Bidirectional, false)
			opened <- err
		}()
		synctest.Wait()
		select {
		case err := <-opened:
			t.Fatalf("open beyond the limit returned %v without waiting", err)
		default:
		}
		held[0].CancelWrite(1) // RESET_STREAM makes the stream known to the server
		ss, err := p.server.AcceptInboundStream(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ss.CancelRead(1)
		ss.CancelWrite(1)
		held[0].CancelRead(1)
		select {
		case err := <-opened:
			if err != nil {
				t.Fatalf("blocked open after a stream was released: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("blocked open did not proceed after a stream was released")
		}
	})
}

// cutOnFlight is one end of a pipe that cuts the pipe at a chosen point of
// the handshake: after it first reads a packet (onRead), or after it first
// writes a full-size datagram, which carries a ServerHello (onWrite).
type cutOnFlight struct {
	*conntest.PacketConn
	onRead bool
	done   atomic.Bool
}

func (c *cutOnFlight) ReadFrom(b []byte) (int, net.Addr, error) {
	n, a, err := c.PacketConn.ReadFrom(b)
	if err == nil && c.onRead && !c.done.Swap(true) {
		c.PacketConn.Partition(true)
	}
	return n, a, err
}

func (c *cutOnFlight) WriteTo(b []byte, a net.Addr) (int, error) {
	n, err := c.PacketConn.WriteTo(b, a)
	if !c.onRead && len(b) >= 1000 && !c.done.Swap(true) {
		c.PacketConn.Partition(true) // drops what was just sent, still in flight
	}
	return n, err
}

// TestHandshakeStallsEndWithHandshakeTimeout: when the path dies in the
// middle of a handshake, the server's connection ends with reason
// HandshakeTimeout within Settings.HandshakeTimeout plus a little; so does
// the client's when its handshake cannot complete either, and one whose
// handshake completed (it got the whole server flight) ends at the idle
// timeout.
func TestHandshakeStallsEndWithHandshakeTimeout(t *testing.T) {
	const hs, idle, slack = 2 * time.Second, 3 * time.Second, 500 * time.Millisecond
	cases := []struct {
		name string
		// cutClient wraps the client's end (cut after its first read),
		// else the server's end is wrapped (cut after its first flight).
		cutClient       bool
		clientCompletes bool
	}{
		{"server's first flight lost: both sides HandshakeTimeout", false, false},
		{"client's second flight lost: server HandshakeTimeout, client IdleTimeout", true, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				settings := conn.Settings{HandshakeTimeout: hs, IdleTimeout: idle}
				a, b := conntest.NewPipe(conntest.Link{Delay: 5 * time.Millisecond})
				defer a.Close()
				defer b.Close()
				var ca, cb net.PacketConn = a, b
				if tc.cutClient {
					ca = &cutOnFlight{PacketConn: a, onRead: true}
				} else {
					cb = &cutOnFlight{PacketConn: b}
				}
				sc, cc := creds(t)
				cfg, _ := conn.NewConfiguration([]string{alpn}, settings)
				reg := conn.NewRegistration(t.Name())
				defer reg.Close()
				ln, err := conn.Listen(reg, "", cfg, sc, conn.WithPacketConn(cb), conn.WithLogger(discard))
				if err != nil {
					t.Fatal(err)
				}
				defer ln.Close()
				client, err := conn.New(reg, cc, conn.WithPacketConn(ca), conn.WithLogger(discard))
				if err != nil {
					t.Fatal(err)
				}
				start := time.Now()
				started := make(chan error, 1)
				go func() { started <- client.Start(context.Background(), cfg, "127.0.0.2", 1) }()
				actx, cancel := context.WithTimeout(context.Background(), hs+slack)
				defer cancel()
				server, err := ln.Accept(actx)
				if err != nil {
					t.Fatalf("listener did not hand out the stalled connection: %v", err)
				}
				serr := server.Accept(context.Background())
				serverAt := time.Since(start)
				if serverAt > hs+slack {
					t.Errorf("server Accept returned after %v, want within %v", serverAt, hs+slack)
				}
				if ce := connErr(t, "server Accept", serr); ce.Reason != qerr.HandshakeTimeout {
					t.Errorf("server Accept: reason %v, want HandshakeTimeout (%v)", ce.Reason, serr)
				}
				cerr := <-started
				want, budget := qerr.HandshakeTimeout, hs
				if tc.clientCompletes {
					if cerr != nil {
						t.Fatalf("client Start = %v, want nil: it received the whole server flight", cerr)
					}
					<-client.WatchShutdown()
					cerr = client.Err()
					want, budget = qerr.IdleTimeout, idle
				}
				clientAt := time.Since(start)
				if clientAt > budget+slack {
					t.Errorf("client ended after %v, want within %v", clientAt, budget+slack)
				}
				if ce := connErr(t, "client", cerr); ce.Reason != want {
					t.Errorf("client: reason %v, want %v (%v)", ce.Reason, want, cerr)
				}
				t.Logf("server gave up after %v, client after %v (HandshakeTimeout %v)", serverAt, clientAt, hs)
			})
		})
	}
}

// silentAfterFirstWrite is a real UDP socket that sends its first flight
// (the ClientHello, which takes two datagrams with a post-quantum key share,
// answered by an ACK in between) and, once the server's flight (a full-size
// datagram) has come back, swallows everything it is asked to send.
type silentAfterFirstWrite struct {
	u     *net.UDPConn
	heard atomic.Bool
}

func (s *silentAfterFirstWrite) ReadFrom(b []byte) (int, net.Addr, error) {
	n, a, err := s.u.ReadFrom(b)
	if err == nil && n >= 1000 {
		s.heard.Store(true)
	}
	return n, a, err
}

func (s *silentAfterFirstWrite) WriteTo(b []byte, a net.Addr) (int, error) {
	if s.heard.Load() {
		return len(b), nil
	}
	return s.u.WriteTo(b, a)
}
func (s *silentAfterFirstWrite) Close() error                       { return s.u.Close() }
func (s *silentAfterFirstWrite) LocalAddr() net.Addr                { return s.u.LocalAddr() }
func (s *silentAfterFirstWrite) SetDeadline(t time.Time) error      { return s.u.SetDeadline(t) }
func (s *silentAfterFirstWrite) SetReadDeadline(t time.Time) error  { return s.u.SetReadDeadline(t) }
func (s *silentAfterFirstWrite) SetWriteDeadline(t time.Time) error { return s.u.SetWriteDeadline(t) }
func (s *silentAfterFirstWrite) SetReadBuffer(n int) error          { return s.u.SetReadBuffer(n) }
func (s *silentAfterFirstWrite) SetWriteBuffer(n int) error         { return s.u.SetWriteBuffer(n) }

// TestSilentClientOverUDP: over real loopback UDP, a client that sends its
// ClientHello and goes silent leaves a server connection that ends with
// HandshakeTimeout in time, and a raw socket that sends an Initial-looking
// datagram of garbage leaves nothing behind; the listener keeps serving.
func TestSilentClientOverUDP(t *testing.T) {
	const hs, idle, slack = time.Second, 2 * time.Second, time.Second
	sc, cc := creds(t)
	cfg, _ := conn.NewConfiguration([]string{alpn}, conn.Settings{HandshakeTimeout: hs, IdleTimeout: idle, DatagramReceiveEnabled: true})
	reg := conn.NewRegistration(t.Name())
	defer reg.Close()
	ln, err := conn.Listen(reg, "127.0.0.1:0", cfg, sc, conn.WithLogger(discard))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := uint16(ln.Addr().(*net.UDPAddr).Port)

	// The garbage Initial first: nothing is handed out for it.
	raw, err := net.DialUDP("udp", nil, ln.Addr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	junk := randBytes(1200)
	junk[0] = 0xc3
	binary.BigEndian.PutUint32(junk[1:], 1) // QUIC v1
	junk[5] = 8                             // 8-byte DCID, then junk
	raw.Write(junk)
	raw.Close()
	short, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if c, err := ln.Accept(short); err == nil {
		t.Errorf("listener handed out a connection (state %v) for a garbage Initial", c.State())
	}

	u, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	silent := &silentAfterFirstWrite{u: u}
	defer u.Close()
	client, err := conn.New(reg, cc, conn.WithPacketConn(silent), conn.WithLogger(discard))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	started := make(chan error, 1)
	go func() { started <- client.Start(context.Background(), cfg, "127.0.0.1", port) }()
	actx, cancel2 := context.WithTimeout(context.Background(), hs+slack)
	defer cancel2()
	server, err := ln.Accept(actx)
	if err != nil {
		t.Fatalf("listener did not hand out the silent client's connection: %v", err)
	}
	serr := server.Accept(context.Background())
	serverAt := time.Since(start)
	if serverAt > hs+slack {
		t.Errorf("server Accept returned after %v, want within %v", serverAt, hs+slack)
	}
	if ce := connErr(t, "server Accept", serr); ce.Reason != qerr.HandshakeTimeout {
		t.Errorf("server Accept: reason %v, want HandshakeTimeout (%v)", ce.Reason, serr)
	}
	// The silent client got the server's whole flight, so its own handshake
	// may have completed; either way it must end, promptly.
	cerr := <-started
	if cerr == nil {
		select {
		case <-client.WatchShutdown():
		case <-time.After(idle + slack):
			t.Fatalf("silent client still %v %v after it started", client.State(), time.Since(start))
		}
		cerr = client.Err()
	}
	clientAt := time.Since(start)
	ce := connErr(t, "client", cerr)
	<-server.WatchShutdown()
	<-client.WatchShutdown()

	// The listener still serves a well-behaved client.
	e := serveEcho(ln)
	if err := echoOnce(ctxT(t, 10*time.Second), reg, cfg, cc, port, 1); err != nil {
		t.Errorf("echo after the stalled handshakes: %v", err)
	}
	ln.Close()
	e.wait()
	t.Logf("silent client: server gave up after %v; client ended after %v with %v", serverAt, clientAt, ce.Reason)
}
