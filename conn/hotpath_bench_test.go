//go:build unix

package conn_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/quicconn/quicconn/conn"
	"github.com/quicconn/quicconn/stream"
)

// The hot-path benchmarks put quicconn and raw quic-go side by side on the
// paths where the adapter's cost per operation matters most: received
// datagrams, short requests on a new stream each, and server handshakes.
// Beside time per operation they report the CPU time of the whole process
// (both sides, every goroutine) per operation, which on a shared machine is
// steadier than rates:
//
//	go test -run '^$' -bench Hotpath -count 8 ./conn/ | tee hot.txt
//	benchstat -col /impl hot.txt

// usage is what the process has used so far: CPU time (user and system),
// operating-system context switches, and goroutine wake-ups (goroutines made
// runnable and then run).
type usage struct {
	cpu      time.Duration
	switches int64
	wakeups  float64
}

func processUsage() usage {
	var u usage
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
		u.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		u.switches = int64(ru.Nvcsw + ru.Nivcsw)
	}
	// The runtime records the scheduling latency of one in eight of each
	// goroutine's transitions to runnable (gTrackingPeriod), so the count of
	// its histogram times eight is the number of wake-ups.
	s := []metrics.Sample{{Name: "/sched/latencies:seconds"}}
	metrics.Read(s)
	if s[0].Value.Kind() == metrics.KindFloat64Histogram {
		for _, n := range s[0].Value.Float64Histogram().Counts {
			u.wakeups += 8 * float64(n)
		}
	}
	return u
}

// cpuMeter reports the process's usage per operation of a benchmark:
// CPU time, context switches and goroutine wake-ups.
type cpuMeter struct {
	b     *testing.B
	start usage
}

func startCPU(b *testing.B) *cpuMeter { return &cpuMeter{b: b, start: processUsage()} }

// stop reports the usage since startCPU divided by ops (b.N if ops is 0).
func (m *cpuMeter) stop(ops int) {
	u := processUsage()
	if ops == 0 {
		ops = m.b.N
	}
	n := float64(ops)
	m.b.ReportMetric(float64((u.cpu-m.start.cpu).Nanoseconds())/n, "cpu-ns/op")
	m.b.ReportMetric(float64(u.switches-m.start.switches)/n, "ctxsw/op")
	m.b.ReportMetric((u.wakeups-m.start.wakeups)/n, "wakeups/op")
}

// hotDatagramSize is the payload of the datagram benchmarks: a full packet
// at the 1,200-byte minimum path MTU, as in examples/perf.
const hotDatagramSize = 1100

// datagramSide is one connection's datagram API, quicconn's or raw
// quic-go's, and its count of packets sent and received.
type datagramSide struct {
	send    func([]byte) error
	receive func(context.Context) ([]byte, error)
	packets func() uint64
}

// hotDatagramPairs returns the two sides of a quicconn pair and of a raw
// quic-go pair, by implementation name.
func hotDatagramPairs(e *perfEnv) map[string][2]datagramSide {
	qcC, qcS := e.connPair()
	rawC, rawS := e.rawPair()
	qcPackets := func() uint64 { s := qcS.Stats(); return s.PacketsSent + s.PacketsReceived }
	rawPackets := func() uint64 { s := rawS.ConnectionStats(); return s.PacketsSent + s.PacketsReceived }
	return map[string][2]datagramSide{
		"quicconn": {{send: qcC.SendDatagram}, {receive: qcS.ReceiveDatagram, packets: qcPackets}},
		"quic-go":  {{send: rawC.SendDatagram}, {receive: rawS.ReceiveDatagram, packets: rawPackets}},
	}
}

// BenchmarkHotpathDatagramReceive measures received datagrams while the
// application keeps up: one goroutine waits in ReceiveDatagram, and the
// sender sends a window of datagrams and waits until all of them arrived
// before it sends the next, so that nothing is lost and each operation is
// one datagram sent, delivered and received. With a window of 1 every
// datagram finds the receiver waiting, and wakes it.
func BenchmarkHotpathDatagramReceive(b *testing.B) {
	e := newPerfEnv(b)
	pairs := hotDatagramPairs(e)
	for _, window := range []int{1, 16} {
		for _, impl := range []string{"quicconn", "quic-go"} {
			b.Run(fmt.Sprintf("window=%d/impl=%s", window, impl), func(b *testing.B) {
				benchDatagramWindows(b, pairs[impl][0], pairs[impl][1], window)
			})
		}
	}
}

func benchDatagramWindows(b *testing.B, sender, receiver datagramSide, window int) {
	// A datagram lost on the way would stall a round; the timeout turns
	// that into a failure.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	windows := make(chan int) // how many datagrams to receive next
	received := make(chan error)
	var wg sync.WaitGroup
	wg.Go(func() {
		for n := range windows {
			var err error
			for range n {
				if _, err = receiver.receive(ctx); err != nil {
					break
				}
			}
			received <- err
		}
	})
	defer func() { close(windows); wg.Wait(); cancel() }()
	payload := make([]byte, hotDatagramSize)
	round := func(n int) {
		windows <- n
		for range n {
			if err := sender.send(payload); err != nil {
				b.Fatal(err)
			}
		}
		if err := <-received; err != nil {
			b.Fatalf("receiving a window of %d: %v", n, err)
		}
	}
	for range 64 {
		round(window)
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu := startCPU(b)
	packets := receiver.packets()
	for done := 0; done < b.N; done += window {
		round(min(window, b.N-done))
	}
	cpu.stop(0)
	// The receiving connection's packets, both ways, per datagram: the
	// same work on both sides, unless their timing batches differently.
	b.ReportMetric(float64(receiver.packets()-packets)/float64(b.N), "packets/op")
}

// BenchmarkHotpathDatagramFlood sends datagrams as fast as SendDatagram
// takes them while one goroutine receives, as examples/perf does: the two
// sides compete for the CPUs and what the receiving side costs shows in
// received/s and in the share delivered. An operation is one datagram sent.
func BenchmarkHotpathDatagramFlood(b *testing.B) {
	e := newPerfEnv(b)
	pairs := hotDatagramPairs(e)
	for _, impl := range []string{"quicconn", "quic-go"} {
		b.Run("impl="+impl, func(b *testing.B) {
			sender, receiver := pairs[impl][0], pairs[impl][1]
			var got atomic.Int64
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			wg.Go(func() {
				for {
					if _, err := receiver.receive(ctx); err != nil {
						return
					}
					got.Add(1)
				}
			})
			payload := make([]byte, hotDatagramSize)
			got0 := got.Load()
			b.ReportAllocs()
			b.ResetTimer()
			cpu := startCPU(b)
			start := time.Now()
			for b.Loop() {
				if err := sender.send(payload); err != nil {
					b.Fatal(err)
				}
			}
			elapsed := time.Since(start)
			cpu.stop(0)
			b.StopTimer()
			// What is still on its way at the stop is not counted.
			n := got.Load() - got0
			cancel()
			wg.Wait()
			b.ReportMetric(float64(n)/float64(b.N), "delivered/op")
			b.ReportMetric(float64(n)/elapsed.Seconds(), "received/s")
		})
	}
}

// BenchmarkHotpathRequests sends a 1 KiB request and reads a 1 KiB response
// on a new stream per operation, 16 at a time on one connection, as
// examples/perf's rps workload does.
func BenchmarkHotpathRequests(b *testing.B) {
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
		for range 64 {
			one(make([]byte, 1<<10), make([]byte, 1<<10))
		}
		b.ReportAllocs()
		b.SetParallelism(8) // × GOMAXPROCS 2 = 16 requesters
		b.ResetTimer()
		cpu := startCPU(b)
		b.RunParallel(func(pb *testing.PB) {
			req, resp := make([]byte, 1<<10), make([]byte, 1<<10)
			for pb.Next() {
				one(req, resp)
			}
		})
		cpu.stop(0)
	}
	b.Run("impl=quicconn", func(b *testing.B) {
		client, server := e.connPair()
		stop := serveRequests(func(ctx context.Context) (io.ReadWriteCloser, error) {
			return server.AcceptInboundStream(ctx)
		})
		defer stop()
		run(b, func(ctx context.Context) (io.ReadWriteCloser, error) {
			return client.OpenOutboundStream(ctx, stream.Bidirectional, false)
		})
	})
	b.Run("impl=quic-go", func(b *testing.B) {
		client, server := e.rawPair()
		stop := serveRequests(func(ctx context.Context) (io.ReadWriteCloser, error) {
			return server.AcceptStream(ctx)
		})
		defer stop()
		run(b, func(ctx context.Context) (io.ReadWriteCloser, error) {
			return client.OpenStreamSync(ctx)
		})
	})
}

// BenchmarkHotpathServerHandshake makes one full handshake per operation
// against a quicconn listener and against a raw quic-go listener, from the
// same raw quic-go client (a new socket each time, mutual authentication
// with the pinned certificates), so that only the server sides differ. The
// server side is accepted and waits for the client's close.
func BenchmarkHotpathServerHandshake(b *testing.B) {
	e := newPerfEnv(b)
	dial := func(ctx context.Context, addr net.Addr) error {
		udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			return err
		}
		tr := &quic.Transport{Conn: udp}
		defer udp.Close()
		defer tr.Close()
		qc, err := tr.Dial(ctx, addr, e.clientCred.ClientTLSConfig("127.0.0.1", []string{alpn}), perfQUICConfig())
		if err != nil {
			return err
		}
		// The server has verified the client once it sends HANDSHAKE_DONE.
		select {
		case <-qc.Context().Done():
		case <-qc.HandshakeComplete():
		}
		return qc.CloseWithError(0, "")
	}
	run := func(b *testing.B, addr net.Addr, serve func(ctx context.Context, wg *sync.WaitGroup)) {
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		serve(ctx, &wg)
		defer func() { cancel(); wg.Wait() }()
		for range 8 {
			if err := dial(ctx, addr); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportAllocs()
		b.ResetTimer()
		cpu := startCPU(b)
		for b.Loop() {
			if err := dial(ctx, addr); err != nil {
				b.Fatal(err)
			}
		}
		cpu.stop(0)
	}
	b.Run("impl=quicconn", func(b *testing.B) {
		run(b, e.ln.Addr(), func(ctx context.Context, wg *sync.WaitGroup) {
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
		})
	})
	b.Run("impl=quic-go", func(b *testing.B) {
		run(b, e.rawLn.Addr(), func(ctx context.Context, wg *sync.WaitGroup) {
			wg.Go(func() {
				for {
					s, err := e.rawLn.Accept(ctx)
					if err != nil {
						return
					}
					wg.Go(func() {
						select {
						case <-s.HandshakeComplete():
						case <-s.Context().Done():
						case <-ctx.Done():
						}
						select {
						case <-s.Context().Done():
						case <-ctx.Done():
							s.CloseWithError(0, "")
						}
					})
				}
			})
		})
	})
}

// BenchmarkHotpathHandshake makes one full handshake per operation, client
// and server both quicconn or both raw quic-go, as examples/perf's
// handshakes workload does: a new client socket, mutual authentication,
// and close. A quicconn client that presented a certificate returns from
// Start once the server has confirmed the handshake, a round trip after
// raw quic-go's client returns; impl=quicconn-skip-confirmation opts out
// (Settings.SkipHandshakeConfirmation), so that both sides do the same work.
func BenchmarkHotpathHandshake(b *testing.B) {
	e := newPerfEnv(b)
	skip := perfSettings
	skip.SkipHandshakeConfirmation = true
	skipCfg, err := conn.NewConfiguration([]string{alpn}, skip)
	if err != nil {
		b.Fatal(err)
	}
	connRun := func(b *testing.B, cfg *conn.Configuration) {
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
		one := func() {
			c, err := conn.New(e.reg, e.clientCred)
			if err != nil {
				b.Fatal(err)
			}
			if err := c.Start(ctx, cfg, e.host, e.port); err != nil {
				b.Fatal(err)
			}
			if err := c.ShutdownAndWait(ctx, 0); err != nil {
				b.Fatal(err)
			}
		}
		for range 8 {
			one()
		}
		b.ReportAllocs()
		b.ResetTimer()
		cpu := startCPU(b)
		for b.Loop() {
			one()
		}
		cpu.stop(0)
	}
	b.Run("impl=quicconn", func(b *testing.B) { connRun(b, e.cfg) })
	b.Run("impl=quicconn-skip-confirmation", func(b *testing.B) { connRun(b, skipCfg) })
	b.Run("impl=quic-go", func(b *testing.B) {
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
		one := func() {
			_, closeClient, err := e.rawDial(ctx)
			if err != nil {
				b.Fatal(err)
			}
			closeClient()
		}
		for range 8 {
			one()
		}
		b.ReportAllocs()
		b.ResetTimer()
		cpu := startCPU(b)
		for b.Loop() {
			one()
		}
		cpu.stop(0)
	})
}

// BenchmarkHotpathResumedHandshake makes one resumed handshake per
// operation, as examples/perf's "handshakes resumed" row does: a new client
// socket, a session ticket from the handshake before, one request so that
// the next ticket arrives, and close; quicconn with its Registration's
// tickets, raw quic-go with a tls.ClientSessionCache.
func BenchmarkHotpathResumedHandshake(b *testing.B) {
	e := newPerfEnv(b)
	resumed := perfSettings
	resumed.SkipHandshakeConfirmation = true
	cfg, err := conn.NewConfiguration([]string{alpn}, resumed)
	if err != nil {
		b.Fatal(err)
	}
	request := func(st io.ReadWriteCloser) error {
		if _, err := st.Write([]byte{1}); err != nil {
			return err
		}
		if err := st.Close(); err != nil {
			return err
		}
		_, err := io.ReadAll(st)
		return err
	}
	respond := func(st io.ReadWriteCloser) {
		defer st.Close()
		io.ReadAll(st)
		st.Write([]byte{2})
	}
	measure := func(b *testing.B, one func() (bool, error)) {
		for range 8 {
			if _, err := one(); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportAllocs()
		b.ResetTimer()
		cpu := startCPU(b)
		n, resumed := 0, 0
		for b.Loop() {
			r, err := one()
			if err != nil {
				b.Fatal(err)
			}
			n++
			if r {
				resumed++
			}
		}
		cpu.stop(0)
		if resumed != n {
			b.Fatalf("%d of %d handshakes resumed", resumed, n)
		}
	}
	b.Run("impl=quicconn", func(b *testing.B) {
		ctx := b.Context()
		defer serveEach(e.ln.Accept, func(ctx context.Context, s *conn.Connection) {
			if s.Accept(ctx) != nil {
				return
			}
			go discardDatagrams(s.ReceiveDatagram)
			if st, err := s.AcceptInboundStream(ctx); err == nil {
				respond(st)
			}
			select {
			case <-s.WatchShutdown():
			case <-ctx.Done():
			}
		})()
		measure(b, func() (bool, error) {
			c, err := conn.New(e.reg, e.clientCred)
			if err != nil {
				return false, err
			}
			defer c.ShutdownAndWait(ctx, 0)
			if err := c.Start(ctx, cfg, e.host, e.port); err != nil {
				return false, err
			}
			st, err := c.OpenOutboundStream(ctx, stream.Bidirectional, false)
			if err != nil {
				return false, err
			}
			return c.Resumed(), request(st)
		})
	})
	b.Run("impl=quic-go", func(b *testing.B) {
		ctx := b.Context()
		defer serveEach(e.rawLn.Accept, func(ctx context.Context, s *quic.Conn) {
			go discardDatagrams(s.ReceiveDatagram)
			if st, err := s.AcceptStream(ctx); err == nil {
				respond(st)
			}
			select {
			case <-s.Context().Done():
			case <-ctx.Done():
				s.CloseWithError(0, "")
			}
		})()
		sessions := tls.NewLRUClientSessionCache(64)
		measure(b, func() (bool, error) {
			udp, err := net.ListenUDP("udp", &net.UDPAddr{})
			if err != nil {
				return false, err
			}
			tr := &quic.Transport{Conn: udp}
			defer udp.Close()
			defer tr.Close()
			tlsConf := e.clientCred.ClientTLSConfig("127.0.0.1", []string{alpn})
			tlsConf.ClientSessionCache = sessions
			qc, err := tr.Dial(ctx, e.rawLn.Addr(), tlsConf, perfQUICConfig())
			if err != nil {
				return false, err
			}
			defer qc.CloseWithError(0, "")
			st, err := qc.OpenStreamSync(ctx)
			if err != nil {
				return false, err
			}
			return qc.ConnectionState().TLS.DidResume, request(st)
		})
	})
}

// discardDatagrams receives datagrams until receive fails, as a server
// that counts them does.
func discardDatagrams(receive func(context.Context) ([]byte, error)) {
	for {
		if _, err := receive(context.Background()); err != nil {
			return
		}
	}
}

// serveEach accepts connections with accept until it fails, and serves
// each with serve in a goroutine of its own. The returned function ends
// the context that both get and waits for every goroutine.
func serveEach[C any](accept func(context.Context) (C, error), serve func(context.Context, C)) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := accept(ctx)
			if err != nil {
				return
			}
			wg.Go(func() { serve(ctx, c) })
		}
	})
	return func() { cancel(); wg.Wait() }
}
