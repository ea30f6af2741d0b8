package conn_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/quicconn/quicconn/certverify"
	"github.com/quicconn/quicconn/conn"
	"github.com/quicconn/quicconn/stream"
)

// The benchmarks run the same paths through quicconn and through raw
// quic-go, on loopback UDP, with the same credentials, the very TLS configs
// certverify builds, and the same transport settings, so that benchstat can
// compare commits and the two sub-benchmarks can be compared with each
// other. examples/perf measures the same paths with a TCP + TLS baseline.
//
//	go test -run '^$' -bench . -benchmem -count 6 ./conn/ | tee new.txt
//	benchstat old.txt new.txt

// perfSettings are the settings of both sides; perfQUICConfig is what conn
// translates them to, so raw quic-go runs with exactly the same.
var perfSettings = conn.Settings{DatagramReceiveEnabled: true}

func perfQUICConfig() *quic.Config { return conn.QUICConfigForTest(perfSettings) }

// perfEnv is a quicconn listener and a raw quic-go listener on loopback,
// with the credentials both use.
type perfEnv struct {
	tb                     testing.TB
	serverCred, clientCred *certverify.Credential
	reg                    *conn.Registration
	cfg                    *conn.Configuration
	ln                     *conn.Listener
	host                   string
	port                   uint16
	rawLn                  *quic.EarlyListener
	rawTr                  *quic.Transport
	tcpLn                  net.Listener // TCP + TLS 1.3 baseline, same credentials and configs
	tcpWG                  sync.WaitGroup
	tcpMu                  sync.Mutex
	tcpServe               func(*tls.Conn) // serves the next accepted connection
}

func newPerfEnv(tb testing.TB) *perfEnv {
	tb.Helper()
	sc, cc := creds(tb)
	e := &perfEnv{tb: tb, serverCred: sc, clientCred: cc, reg: conn.NewRegistration(tb.Name())}
	tb.Cleanup(func() {
		e.reg.Close()
		if e.rawLn != nil {
			e.rawLn.Close()
			e.rawTr.Close()
			e.rawTr.Conn.Close()
		}
		if e.tcpLn != nil {
			e.tcpLn.Close()
			e.tcpWG.Wait()
		}
	})
	var err error
	if e.cfg, err = conn.NewConfiguration([]string{alpn}, perfSettings); err != nil {
		tb.Fatal(err)
	}
	if e.ln, err = conn.Listen(e.reg, "127.0.0.1:0", e.cfg, sc); err != nil {
		tb.Fatal(err)
	}
	ua := e.ln.Addr().(*net.UDPAddr)
	e.host, e.port = ua.IP.String(), uint16(ua.Port)

	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatal(err)
	}
	e.rawTr = &quic.Transport{Conn: udp}
	// quicconn's listener starts from this very config and uses ListenEarly.
	if e.rawLn, err = e.rawTr.ListenEarly(sc.ServerTLSConfig([]string{alpn}), perfQUICConfig()); err != nil {
		udp.Close()
		tb.Fatal(err)
	}
	return e
}

// tcpDial connects to the TCP + TLS server, starting it at the first call;
// serve runs on the server's side of the connection.
func (e *perfEnv) tcpDial(serve func(*tls.Conn)) *tls.Conn {
	e.tb.Helper()
	e.tcpMu.Lock()
	e.tcpServe = serve
	e.tcpMu.Unlock()
	if e.tcpLn == nil {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			e.tb.Fatal(err)
		}
		e.tcpLn = ln
		conf := e.serverCred.ServerTLSConfig([]string{alpn})
		e.tcpWG.Go(func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				e.tcpMu.Lock()
				serve := e.tcpServe
				e.tcpMu.Unlock()
				e.tcpWG.Go(func() {
					tc := tls.Server(c, conf)
					defer tc.Close()
					serve(tc)
				})
			}
		})
	}
	c, err := tls.Dial("tcp", e.tcpLn.Addr().String(), e.clientCred.ClientTLSConfig("127.0.0.1", []string{alpn}))
	if err != nil {
		e.tb.Fatal(err)
	}
	return c
}

// connPair returns a connected quicconn client and server.
func (e *perfEnv) connPair() (client, server *conn.Connection) {
	e.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client, err := conn.New(e.reg, e.clientCred)
	if err != nil {
		e.tb.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- client.Start(ctx, e.cfg, e.host, e.port) }()
	server, err = e.ln.Accept(ctx)
	if err != nil {
		e.tb.Fatal(err)
	}
	if err := server.Accept(ctx); err != nil {
		e.tb.Fatal(err)
	}
	if err := <-errc; err != nil {
		e.tb.Fatal(err)
	}
	return client, server
}

// rawDial makes a raw quic-go client connection as quicconn's Start does:
// its own socket and quic.Transport. close releases all three.
func (e *perfEnv) rawDial(ctx context.Context) (qc *quic.Conn, close func(), err error) {
	udp, err := net.ListenUDP("udp", &net.UDPAddr{})
	if err != nil {
		return nil, nil, err
	}
	tr := &quic.Transport{Conn: udp}
	qc, err = tr.Dial(ctx, e.rawLn.Addr(), e.clientCred.ClientTLSConfig("127.0.0.1", []string{alpn}), perfQUICConfig())
	if err != nil {
		tr.Close()
		udp.Close()
		return nil, nil, err
	}
	return qc, func() {
		qc.CloseWithError(0, "")
		tr.Close()
		udp.Close()
	}, nil
}

// rawPair returns a connected raw quic-go client and server.
func (e *perfEnv) rawPair() (client, server *quic.Conn) {
	e.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client, closeClient, err := e.rawDial(ctx)
	if err != nil {
		e.tb.Fatal(err)
	}
	server, err = e.rawLn.Accept(ctx)
	if err != nil {
		closeClient()
		e.tb.Fatal(err)
	}
	select {
	case <-server.HandshakeComplete():
	case <-ctx.Done():
		e.tb.Fatal("server handshake did not complete")
	}
	e.tb.Cleanup(func() {
		closeClient()
		server.CloseWithError(0, "")
	})
	return client, server
}

// connStreams and rawStreams open a bidirectional stream on a pair and
// accept it on the other side; a marker byte makes both ends established.
func (e *perfEnv) connStreams(client, server *conn.Connection) (c, s *stream.Stream) {
	e.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.OpenOutboundStream(ctx, stream.Bidirectional, false)
	if err != nil {
		e.tb.Fatal(err)
	}
	if _, err := c.Write([]byte{0}); err != nil {
		e.tb.Fatal(err)
	}
	if s, err = server.AcceptInboundStream(ctx); err != nil {
		e.tb.Fatal(err)
	}
	if _, err := io.ReadFull(s, make([]byte, 1)); err != nil {
		e.tb.Fatal(err)
	}
	return c, s
}

func (e *perfEnv) rawStreams(client, server *quic.Conn) (c, s *quic.Stream) {
	e.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.OpenStreamSync(ctx)
	if err != nil {
		e.tb.Fatal(err)
	}
	if _, err := c.Write([]byte{0}); err != nil {
		e.tb.Fatal(err)
	}
	if s, err = server.AcceptStream(ctx); err != nil {
		e.tb.Fatal(err)
	}
	if _, err := io.ReadFull(s, make([]byte, 1)); err != nil {
		e.tb.Fatal(err)
	}
	return c, s
}

// BenchmarkStreamThroughput writes 64 KiB per operation on one stream
// while the peer reads; the time includes delivery of the last byte.
func BenchmarkStreamThroughput(b *testing.B) {
	e := newPerfEnv(b)
	run := func(b *testing.B, w io.WriteCloser, r io.Reader) {
		buf := make([]byte, 64<<10)
		done := make(chan error, 1)
		go func() {
			rbuf := make([]byte, 64<<10)
			for {
				if _, err := r.Read(rbuf); err != nil {
					if errors.Is(err, io.EOF) {
						err = nil
					}
					done <- err
					return
				}
			}
		}()
		b.SetBytes(int64(len(buf)))
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			if _, err := w.Write(buf); err != nil {
				b.Fatal(err)
			}
		}
		w.Close()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
	b.Run("quicconn", func(b *testing.B) {
		c, s := e.connStreams(e.connPair())
		run(b, c, s)
	})
	b.Run("quic-go", func(b *testing.B) {
		c, s := e.rawStreams(e.rawPair())
		run(b, c, s)
	})
	b.Run("tcp-tls", func(b *testing.B) {
		server, release := make(chan *tls.Conn, 1), make(chan struct{})
		defer close(release)
		c := e.tcpDial(func(s *tls.Conn) {
			s.Handshake() // tls.Dial waits for it
			server <- s
			<-release
		})
		defer c.Close()
		run(b, closeWriter{c}, <-server)
	})
}

// closeWriter makes Close of a TLS connection send close_notify and FIN on
// the write side only, as a QUIC stream's Close sends FIN.
type closeWriter struct{ *tls.Conn }

func (c closeWriter) Close() error { return c.CloseWrite() }

// serveRequests answers every stream accept returns: it reads the request
// to FIN and writes a 1 KiB response and FIN.
func serveRequests(accept func(context.Context) (io.ReadWriteCloser, error)) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	resp := make([]byte, 1<<10)
	wg.Go(func() {
		for {
			st, err := accept(ctx)
			if err != nil {
				return
			}
			wg.Go(func() {
				defer st.Close()
				if _, err := io.Copy(io.Discard, st); err != nil {
					return
				}
				st.Write(resp)
			})
		}
	})
	return func() { cancel(); wg.Wait() }
}

// BenchmarkRequestResponse sends a 1 KiB request and reads a 1 KiB response
// on a new stream per operation, one request at a time (the latency path)
// and 32 at a time (b.SetParallelism with GOMAXPROCS).
func BenchmarkRequestResponse(b *testing.B) {
	e := newPerfEnv(b)
	type opener func(context.Context) (io.ReadWriteCloser, error)
	run := func(b *testing.B, open opener) {
		one := func(req, resp []byte) {
			st, err := open(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			if _, err := st.Write(req); err != nil {
				b.Fatal(err)
			}
			st.Close()
			if _, err := io.ReadFull(st, resp); err != nil {
				b.Fatal(err)
			}
			if n, err := st.Read(resp[:1]); n != 0 || !errors.Is(err, io.EOF) {
				b.Fatalf("response not followed by FIN: %d, %v", n, err)
			}
		}
		b.Run("c=1", func(b *testing.B) {
			req, resp := make([]byte, 1<<10), make([]byte, 1<<10)
			b.ReportAllocs()
			for b.Loop() {
				one(req, resp)
			}
		})
		b.Run("c=32", func(b *testing.B) {
			b.ReportAllocs()
			b.SetParallelism(16) // × GOMAXPROCS 2 = 32 requesters
			b.RunParallel(func(pb *testing.PB) {
				req, resp := make([]byte, 1<<10), make([]byte, 1<<10)
				for pb.Next() {
					one(req, resp)
				}
			})
		})
	}
	b.Run("quicconn", func(b *testing.B) {
		client, server := e.connPair()
		stop := serveRequests(func(ctx context.Context) (io.ReadWriteCloser, error) {
			return server.AcceptInboundStream(ctx)
		})
		defer stop()
		run(b, func(ctx context.Context) (io.ReadWriteCloser, error) {
			return client.OpenOutboundStream(ctx, stream.Bidirectional, false)
		})
	})
	b.Run("quic-go", func(b *testing.B) {
		client, server := e.rawPair()
		stop := serveRequests(func(ctx context.Context) (io.ReadWriteCloser, error) {
			return server.AcceptStream(ctx)
		})
		defer stop()
		run(b, func(ctx context.Context) (io.ReadWriteCloser, error) {
			return client.OpenStreamSync(ctx)
		})
	})
	// The TCP baseline sends the requests of one requester one after
	// another on its own connection.
	b.Run("tcp-tls", func(b *testing.B) {
		serve := func(s *tls.Conn) {
			req, resp := make([]byte, 1<<10), make([]byte, 1<<10)
			for {
				if _, err := io.ReadFull(s, req); err != nil {
					return
				}
				if _, err := s.Write(resp); err != nil {
					return
				}
			}
		}
		one := func(c *tls.Conn, req, resp []byte) {
			if _, err := c.Write(req); err != nil {
				b.Fatal(err)
			}
			if _, err := io.ReadFull(c, resp); err != nil {
				b.Fatal(err)
			}
		}
		b.Run("c=1", func(b *testing.B) {
			c := e.tcpDial(serve)
			defer c.Close()
			req, resp := make([]byte, 1<<10), make([]byte, 1<<10)
			b.ReportAllocs()
			for b.Loop() {
				one(c, req, resp)
			}
		})
		b.Run("c=32", func(b *testing.B) {
			var mu sync.Mutex
			b.ReportAllocs()
			b.SetParallelism(16)
			b.RunParallel(func(pb *testing.PB) {
				mu.Lock()
				c := e.tcpDial(serve)
				mu.Unlock()
				defer c.Close()
				req, resp := make([]byte, 1<<10), make([]byte, 1<<10)
				for pb.Next() {
					one(c, req, resp)
				}
			})
		})
	})
}

// BenchmarkDatagram sends 1,100-byte datagrams as fast as SendDatagram takes
// them while the peer receives; delivered/op is the share that arrived.
func BenchmarkDatagram(b *testing.B) {
	e := newPerfEnv(b)
	payload := make([]byte, 1100)
	run := func(b *testing.B, send func([]byte) error, receive func(context.Context) ([]byte, error), barrier func()) {
		var got atomic.Int64
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() {
			for {
				if _, err := receive(ctx); err != nil {
					return
				}
				got.Add(1)
			}
		})
		b.ReportAllocs()
		for b.Loop() {
			if err := send(payload); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		// Once the barrier's round trip is back, every datagram sent has
		// reached the peer or was lost; the receiver, which prefers a
		// queued datagram over its ended context, then drains the queue.
		barrier()
		cancel()
		wg.Wait()
		b.ReportMetric(float64(got.Load())/float64(b.N), "delivered/op")
	}
	b.Run("quicconn", func(b *testing.B) {
		client, server := e.connPair()
		c, s := e.connStreams(client, server)
		run(b, client.SendDatagram, server.ReceiveDatagram, roundTrip(b, c, s))
	})
	b.Run("quic-go", func(b *testing.B) {
		client, server := e.rawPair()
		c, s := e.rawStreams(client, server)
		run(b, client.SendDatagram, server.ReceiveDatagram, roundTrip(b, c, s))
	})
}

// roundTrip returns a barrier: it sends a byte on c, which s echoes, and
// returns when the echo is back. By then the peer has processed every
// packet sent before the byte (loopback keeps a socket's packets in order).
// The echo ends when the streams do, with their connections.
func roundTrip[S io.ReadWriter](b *testing.B, c, s S) func() {
	go func() {
		buf := make([]byte, 1)
		for {
			if _, err := io.ReadFull(s, buf); err != nil {
				return
			}
			if _, err := s.Write(buf); err != nil {
				return
			}
		}
	}()
	return func() {
		buf := []byte{1}
		if _, err := c.Write(buf); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHandshake makes one full handshake per operation: a new client
// socket, mutual authentication with the pinned certificates, and close.
// quicconn's client neither resumes nor waits for the confirmation, as raw
// quic-go's does not.
func BenchmarkHandshake(b *testing.B) {
	e := newPerfEnv(b)
	s := e.cfg.Settings
	s.SkipHandshakeConfirmation, s.DisableResumption = true, true
	clientCfg, err := conn.NewConfiguration(e.cfg.ALPN, s)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("quicconn", func(b *testing.B) {
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() {
			for {
				s, err := e.ln.Accept(ctx)
				if err != nil {
					return
				}
				wg.Go(func() {
					if s.Accept(ctx) == nil {
						select {
						case <-s.WatchShutdown():
						case <-ctx.Done():
						}
					}
				})
			}
		})
		defer func() { cancel(); wg.Wait() }()
		b.ReportAllocs()
		for b.Loop() {
			c, err := conn.New(e.reg, e.clientCred)
			if err != nil {
				b.Fatal(err)
			}
			if err := c.Start(ctx, clientCfg, e.host, e.port); err != nil {
				b.Fatal(err)
			}
			if err := c.ShutdownAndWait(ctx, 0); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("quic-go", func(b *testing.B) {
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() {
			for {
				s, err := e.rawLn.Accept(ctx)
				if err != nil {
					return
				}
				wg.Go(func() {
					select {
					case <-s.Context().Done():
					case <-ctx.Done():
						s.CloseWithError(0, "")
					}
				})
			}
		})
		defer func() { cancel(); wg.Wait() }()
		b.ReportAllocs()
		for b.Loop() {
			_, closeClient, err := e.rawDial(ctx)
			if err != nil {
				b.Fatal(err)
			}
			closeClient()
		}
	})
	b.Run("tcp-tls", func(b *testing.B) {
		serve := func(s *tls.Conn) { s.Handshake() }
		b.ReportAllocs()
		for b.Loop() {
			c := e.tcpDial(serve)
			if err := c.Handshake(); err != nil {
				b.Fatal(err)
			}
			c.Close()
		}
	})
}
