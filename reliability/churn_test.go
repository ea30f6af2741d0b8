package reliability_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quicconn/quicconn/certverify"
	"github.com/quicconn/quicconn/conn"
	qerr "github.com/quicconn/quicconn/errors"
	"github.com/quicconn/quicconn/stream"
)

// echoServer serves a listener until it is closed: for every connection it
// echoes each bidirectional stream until EOF and every datagram.
type echoServer struct {
	ln       *conn.Listener
	wg       sync.WaitGroup
	accepted atomic.Int64
	failed   atomic.Int64

	mu      sync.Mutex
	reasons map[string]int // how the server's connections ended
}

func (e *echoServer) ended(c *conn.Connection) {
	reason := "nil"
	var ce *qerr.ConnectionError
	if errors.As(c.Err(), &ce) {
		reason = ce.Reason.String()
	}
	e.mu.Lock()
	if e.reasons == nil {
		e.reasons = make(map[string]int)
	}
	e.reasons[reason]++
	e.mu.Unlock()
}

func serveEcho(ln *conn.Listener) *echoServer {
	e := &echoServer{ln: ln}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		for {
			c, err := ln.Accept(context.Background())
			if err != nil {
				return
			}
			e.wg.Add(1)
			go func() {
				defer e.wg.Done()
				e.handle(c)
			}()
		}
	}()
	return e
}

func (e *echoServer) handle(c *conn.Connection) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	defer e.ended(c)
	if err := c.Accept(ctx); err != nil {
		e.failed.Add(1)
		<-c.WatchShutdown()
		return
	}
	e.accepted.Add(1)
	go func() { // datagram echo; ends with the connection
		for {
			b, err := c.ReceiveDatagram(ctx)
			if err != nil {
				return
			}
			c.SendDatagram(b)
		}
	}()
	for {
		s, err := c.AcceptInboundStream(ctx)
		if err != nil {
			break
		}
		go func() {
			s.SetDeadline(time.Now().Add(30 * time.Second))
			io.Copy(s, s)
			s.Close()
		}()
	}
	<-c.WatchShutdown()
}

func (e *echoServer) wait() { e.wg.Wait() }

// echoOnce dials addr, echoes one stream and one datagram, and shuts the
// connection down.
func echoOnce(ctx context.Context, reg *conn.Registration, cfg *conn.Configuration, cred *certverify.Credential, port uint16, id int) error {
	c, err := conn.New(reg, cred, conn.WithLogger(discard))
	if err != nil {
		return err
	}
	if err := c.Start(ctx, cfg, "127.0.0.1", port); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	defer c.ShutdownAndWait(ctx, 0)
	s, err := c.OpenOutboundStream(ctx, stream.Bidirectional, false)
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	msg := fmt.Appendf(nil, "hello %d", id)
	if _, err := s.WriteChunks([][]byte{msg}, true); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	s.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(s)
	if err != nil || !bytes.Equal(got, msg) {
		return fmt.Errorf("stream echo = %q, %v; want %q", got, err, msg)
	}
	// A datagram may be lost even on loopback: retry a few times.
	d := binary.BigEndian.AppendUint64(nil, uint64(id))
	for try := 0; ; try++ {
		if err := c.SendDatagram(d); err != nil {
			return fmt.Errorf("send datagram: %w", err)
		}
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		b, err := c.ReceiveDatagram(rctx)
		cancel()
		if err == nil {
			if !bytes.Equal(b, d) {
				return fmt.Errorf("datagram echo = %x, want %x", b, d)
			}
			return nil
		}
		if !errors.Is(err, context.DeadlineExceeded) || try == 4 {
			return fmt.Errorf("receive datagram: %w", err)
		}
	}
}

// resources is what a leak would show: goroutines, open files and heap.
type resources struct {
	goroutines int
	fds        int
	heap       uint64
}

func measure(t testing.TB) resources {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count file descriptors: %v", err)
	}
	return resources{runtime.NumGoroutine(), len(fds), ms.HeapAlloc}
}

// settle measures until goroutines and fds are back to base, for up to 5s
// (goroutines of closed connections take a moment to be scheduled out).
func settle(t testing.TB, base resources) resources {
	deadline := time.Now().Add(5 * time.Second)
	for {
		r := measure(t)
		if (r.goroutines <= base.goroutines && r.fds <= base.fds) || time.Now().After(deadline) {
			return r
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func checkBaseline(t *testing.T, what string, base, after resources) {
	t.Helper()
	growth := int64(after.heap) - int64(base.heap)
	t.Logf("%s: goroutines %d → %d, fds %d → %d, heap %.2f MiB → %.2f MiB (growth %+.2f MiB)",
		what, base.goroutines, after.goroutines, base.fds, after.fds,
		float64(base.heap)/(1<<20), float64(after.heap)/(1<<20), float64(growth)/(1<<20))
	if after.goroutines > base.goroutines {
		buf := make([]byte, 1<<20)
		t.Errorf("%s: %d goroutines after WaitIdle, baseline %d:\n%s", what, after.goroutines, base.goroutines, buf[:runtime.Stack(buf, true)])
	}
	if after.fds > base.fds {
		t.Errorf("%s: %d open fds after WaitIdle, baseline %d", what, after.fds, base.fds)
	}
	if growth > 10<<20 {
		t.Errorf("%s: heap grew %.2f MiB, want < 10 MiB", what, float64(growth)/(1<<20))
	}
}

// TestChurnLeavesNothingBehind opens and closes connections on one
// Registration over real loopback UDP — 300 in sequence and 100 at once
// (2,000 and 200 with -soak) — each echoing a stream and a datagram, and
// checks that goroutines, fds and heap return to their baseline after
// WaitIdle.
func TestChurnLeavesNothingBehind(t *testing.T) {
	seq, conc := 300, 100
	if *soak {
		seq, conc = 2000, 200
	}
	sc, cc := creds(t)
	// Under load a client's retransmitted Initial can reach the server after
	// the first copy's handshake completed; quic-go then starts a second
	// server connection that never completes, and WaitIdle rightly waits for
	// its HandshakeTimeout. 15s keeps that wait short yet leaves room for
	// 200 handshakes at once on two cores with -race (about 9s).
	cfg, err := conn.NewConfiguration([]string{alpn}, conn.Settings{DatagramReceiveEnabled: true, HandshakeTimeout: 15 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	// One warm-up round, so that lazily made globals (pools, crypto tables)
	// are in the baseline.
	warm := conn.NewRegistration("warm-up")
	if ln, err := conn.Listen(warm, "127.0.0.1:0", cfg, sc, conn.WithLogger(discard)); err == nil {
		e := serveEcho(ln)
		if err := echoOnce(ctxT(t, 10*time.Second), warm, cfg, cc, uint16(ln.Addr().(*net.UDPAddr).Port), -1); err != nil {
			t.Fatalf("warm-up: %v", err)
		}
		ln.Close()
		warm.Close()
		e.wait()
	}

	base := settle(t, measure(t))
	rcvbuf0 := udpRcvbufErrors()
	reg := conn.NewRegistration(t.Name())
	ln, err := conn.Listen(reg, "127.0.0.1:0", cfg, sc, conn.WithLogger(discard))
	if err != nil {
		t.Fatal(err)
	}
	port := uint16(ln.Addr().(*net.UDPAddr).Port)
	e := serveEcho(ln)
	ctx := ctxT(t, 10*time.Minute)

	start := time.Now()
	for i := range seq {
		if err := echoOnce(ctx, reg, cfg, cc, port, i); err != nil {
			t.Fatalf("sequential connection %d: %v", i, err)
		}
	}
	seqTime := time.Since(start)

	start = time.Now()
	errs := make(chan error, conc)
	for i := range conc {
		go func() { errs <- echoOnce(ctx, reg, cfg, cc, port, seq+i) }()
	}
	var failed []error
	for range conc {
		if err := <-errs; err != nil {
			failed = append(failed, err)
		}
	}
	concTime := time.Since(start)
	if len(failed) > 0 {
		t.Errorf("%d of %d concurrent connections failed; first: %v", len(failed), conc, failed[0])
	}

	ln.Close()
	// A client's CONNECTION_CLOSE can be lost on a busy loopback socket; its
	// server connection then ends at the idle timeout (30s), so allow that.
	start = time.Now()
	wctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := reg.WaitIdle(wctx); err != nil {
		t.Fatalf("WaitIdle: %v", err)
	}
	idleTime := time.Since(start)
	e.wait()
	reg.Close()
	t.Logf("%d sequential connections in %v (%v each); %d concurrent in %v; server accepted %d; WaitIdle took %v; server connections ended by %v; UDP receive-buffer drops in the kernel during the test: %d",
		seq, seqTime, seqTime/time.Duration(seq), conc, concTime, e.accepted.Load(), idleTime, e.reasons, udpRcvbufErrors()-rcvbuf0)
	start = time.Now()
	after := settle(t, base)
	t.Logf("settled in %v", time.Since(start))
	checkBaseline(t, "churn", base, after)
}

// TestListenerSurvivesGarbageSpray sprays a listener's UDP port with random
// datagrams, some dressed as QUIC Initial packets, while clients handshake
// and echo: every handshake and echo succeeds, and nothing leaks.
func TestListenerSurvivesGarbageSpray(t *testing.T) {
	clients, garbage := 40, 20000
	if *soak {
		clients, garbage = 300, 200000
	}
	sc, cc := creds(t)
	cfg, err := conn.NewConfiguration([]string{alpn}, conn.Settings{DatagramReceiveEnabled: true})
	if err != nil {
		t.Fatal(err)
	}
	base := settle(t, measure(t))
	reg := conn.NewRegistration(t.Name())
	ln, err := conn.Listen(reg, "127.0.0.1:0", cfg, sc, conn.WithLogger(discard))
	if err != nil {
		t.Fatal(err)
	}
	e := serveEcho(ln)
	port := uint16(ln.Addr().(*net.UDPAddr).Port)

	stop := make(chan struct{})
	sprayed := make(chan int)
	go func() {
		n := 0
		defer func() { sprayed <- n }()
		u, err := net.DialUDP("udp", nil, ln.Addr().(*net.UDPAddr))
		if err != nil {
			return
		}
		defer u.Close()
		buf := make([]byte, 1500)
		deadline := time.Now().Add(time.Minute)
		for ; n < garbage && time.Now().Before(deadline); n++ {
			select {
			case <-stop:
				return
			default:
			}
			size := 1 + int(buf[0])*5
			rand.Read(buf[:size])
			if n%3 == 0 && size >= 1200 { // a long-header Initial of QUIC v1 with junk inside
				buf[0] = 0xc0 | buf[0]&0x0f
				binary.BigEndian.PutUint32(buf[1:], 1)
				buf[5] = 8
			}
			u.Write(buf[:size])
			if n%256 == 0 {
				time.Sleep(time.Millisecond) // do not starve the handshakes of CPU
			}
		}
	}()

	ctx := ctxT(t, 5*time.Minute)
	for i := range clients {
		if err := echoOnce(ctx, reg, cfg, cc, port, i); err != nil {
			t.Fatalf("client %d under garbage spray: %v", i, err)
		}
	}
	close(stop)
	n := <-sprayed
	if n == 0 {
		t.Fatal("sprayed nothing")
	}
	ln.Close()
	wctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := reg.WaitIdle(wctx); err != nil {
		t.Fatalf("WaitIdle: %v", err)
	}
	e.wait()
	reg.Close()
	t.Logf("%d clients echoed while %d garbage datagrams were sprayed; server accepted %d, failed %d",
		clients, n, e.accepted.Load(), e.failed.Load())
	checkBaseline(t, "garbage spray", base, settle(t, base))
}

// udpRcvbufErrors reads the kernel's count of UDP datagrams dropped for a
// full socket receive buffer (0 where /proc/net/snmp is unavailable).
func udpRcvbufErrors() int64 {
	b, err := os.ReadFile("/proc/net/snmp")
	if err != nil {
		return 0
	}
	var names []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "Udp:" {
			continue
		}
		if names == nil {
			names = f
			continue
		}
		for i, n := range names {
			if n == "RcvbufErrors" && i < len(f) {
				v, _ := strconv.ParseInt(f[i], 10, 64)
				return v
			}
		}
	}
	return 0
}
