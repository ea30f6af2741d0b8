package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/quicconn/quicconn/conn"
	qerr "github.com/quicconn/quicconn/errors"
)

// The connections workload: many idle connections to one listener, then a
// storm of simultaneous handshakes on top of them. The server runs on one
// socket and accepts every connection at once, as a mesh node does; the
// clients share a few sockets, as the clients of one process do, so that
// the figures are the cost of a connection and not of a socket.

// connsSettings are the settings of both sides, quicconn and raw quic-go:
// the defaults, without datagrams (whose drain is the one goroutine an idle
// quicconn connection may have), an idle timeout long enough that the first
// connections outlive the set-up of the last, and a handshake budget that a
// storm on a loaded machine (or under the race detector) does not exhaust:
// the workload measures how long the storm takes, and a handshake that
// fails still fails it.
var connsSettings = conn.Settings{IdleTimeout: 10 * time.Minute, HandshakeTimeout: time.Minute}

func connsQUICConfig() *quic.Config {
	return &quic.Config{
		HandshakeIdleTimeout:  connsSettings.HandshakeTimeout,
		MaxIdleTimeout:        connsSettings.IdleTimeout,
		MaxIncomingStreams:    conn.DefaultPeerStreamCount,
		MaxIncomingUniStreams: conn.DefaultPeerStreamCount,
		InitialPacketSize:     1200, // as conn sets it
	}
}

// connsParams size one sample.
type connsParams struct {
	conns   int // idle connections
	storm   int // simultaneous handshakes after them
	sockets int // client sockets
}

// connsDialers is how many handshakes the idle set-up runs at once; the
// storm then starts all of its own at once.
const connsDialers = 32

var connectionsMetrics = []metricSpec{
	{"heap B/conn/side", false, connsHeapContract, false},
	{"goroutines/conn/side", false, connsGoroutines, false},
	{"stack B/conn/side", false, contract{}, false},
	{"set-up conns/s", true, contract{}, false},
	{"storm ms", false, contract{}, false},
	{"storm p99 ms", false, contract{}, false},
	{"refused", false, zeroContract, true},
	{"lost", false, zeroContract, true},
	{"server hs failed", false, contract{}, true},
	{"half-open", false, zeroContract, true},
	{"goroutines left", false, zeroContract, true},
	{"fds left", false, zeroContract, true},
	{connsCPUKey, false, contract{}, false},
	{"close CPU µs/conn", false, contract{}, false},
}

// connsCPUKey is the connections workload's CPU time per handshake, both
// sides, over the set-up and the storm.
const connsCPUKey = "CPU µs/handshake"

// A fleet is one transport's server and clients for the connections
// workload.
type fleet interface {
	// dial makes one connection and returns when its client side has
	// completed the handshake.
	dial(ctx context.Context, i int) error
	// served returns the channel on which the server reports each
	// connection whose handshake it has completed (nil) or seen fail.
	served() <-chan error
	// census counts the connections by state.
	census() census
	// acceptErr is why the server's accept loop stopped, nil while it runs.
	acceptErr() error
	// close closes every connection, the server and the sockets, and
	// returns when they are gone.
	close() error
}

// A census counts a fleet's connections: those alive on each side, the
// clients the server refused after their handshake had completed (quic-go
// queues a connection for Accept, and refuses it when the queue is full,
// only once the client may already be done), and the connection sides that
// ended for any other reason.
type census struct {
	clients, servers int
	refused          int
	lostClients      int
	lostServers      int
}

func (c census) String() string {
	return fmt.Sprintf("%d clients and %d servers alive, %d refused, %d clients and %d servers lost",
		c.clients, c.servers, c.refused, c.lostClients, c.lostServers)
}

// connections measures one transport: p.conns idle connections, then a
// storm of p.storm simultaneous handshakes, then close. Both sides live in
// this process: the heap, stack and goroutines the idle connections add are
// divided by the connection sides alive, 2 × p.conns when none was refused.
func connections(ctx context.Context, name string, cr *creds, p connsParams) (figures, error) {
	if err := ensureFiles(p.sockets + 64); err != nil {
		return nil, err
	}
	preallocGoroutines(8 * (p.conns + p.storm))
	_, _, g0 := heapAndGoroutines()
	fd0 := openFiles()

	var f fleet
	var err error
	switch name {
	case qgo:
		f, err = newRawFleet(cr, p)
	case qc:
		f, err = newConnFleet(cr, p)
	default:
		return nil, fmt.Errorf("connections: no fleet for %s", name)
	}
	if err != nil {
		return nil, err
	}
	closed := false
	defer func() {
		if !closed {
			f.close()
		}
	}()
	// The fixed cost of the sockets and the listener is not the
	// connections': the baseline is taken with them open.
	heapA, stackA, gA := heapAndGoroutines()

	// CPU time is counted over the handshakes only (the set-up and the
	// storm), not over the census, the heap measurements or the close.
	cpuSetup := cpuTime()
	refused, setup, sv, err := dialIdle(ctx, f, p.conns)
	if err != nil {
		return nil, err
	}
	cpuHandshakes := cpuTime() - cpuSetup
	// heapAndGoroutines waits for the server's handshake watchers, which
	// exit just after the handshake.
	heapB, stackB, gB := heapAndGoroutines()
	idle := f.census()
	if heapProfile != nil {
		if err := heapProfile("connections", name); err != nil {
			return nil, err
		}
	}

	cpuStorm := cpuTime()
	st, err := storm(ctx, f, p.conns, p.storm, idle)
	if err != nil {
		return nil, err
	}
	cpuHandshakes += cpuTime() - cpuStorm
	end := f.census()

	closed = true
	cpuClose := cpuTime()
	if err := f.close(); err != nil {
		return nil, fmt.Errorf("close: %w", err)
	}
	cpuClose = cpuTime() - cpuClose
	awaitGoroutines(g0, 10*time.Second)
	_, _, g1 := heapAndGoroutines()
	fd1 := openFiles()

	sides := float64(idle.clients + idle.servers)
	if sides == 0 {
		return nil, fmt.Errorf("no connection alive after the set-up: %v", idle)
	}
	slices.Sort(st.lat)
	fig := figures{
		"heap B/conn/side":     float64(int64(heapB)-int64(heapA)) / sides,
		"stack B/conn/side":    float64(int64(stackB)-int64(stackA)) / sides,
		"goroutines/conn/side": float64(gB-gA) / sides,
		"set-up conns/s":       float64(p.conns) / setup.Seconds(),
		"storm ms":             float64(st.took.Microseconds()) / 1e3,
		"storm p99 ms":         float64(st.lat[len(st.lat)*99/100].Microseconds()) / 1e3,
		"refused":              float64(refused + st.refused + end.refused),
		"server hs failed":     float64(sv.failed + st.served.failed),
		"half-open":            float64(sv.halfOpen + st.served.halfOpen),
		"lost":                 float64(end.lostClients + end.lostServers),
		"goroutines left":      float64(g1 - g0),
		connsCPUKey:            float64(cpuHandshakes.Microseconds()) / float64(p.conns+p.storm),
		"close CPU µs/conn":    float64(cpuClose.Microseconds()) / float64(p.conns+p.storm),
	}
	if fd0 >= 0 && fd1 >= 0 {
		fig["fds left"] = float64(fd1 - fd0)
	}
	return fig, nil
}

// preallocGoroutines runs n goroutines at once and lets them exit. The
// runtime allocates a goroutine's descriptor on the heap the first time the
// process has that many goroutines, and keeps it for reuse: without this,
// the first sample of a process would count the descriptors of its peak
// goroutine count (about 1.5 KB per connection side here) and the next
// ones would not. Stacks are counted apart from the heap.
func preallocGoroutines(n int) {
	var started, wg sync.WaitGroup
	release := make(chan struct{})
	started.Add(n)
	for range n {
		wg.Go(func() {
			started.Done()
			<-release
		})
	}
	started.Wait()
	close(release)
	wg.Wait()
}

// dialIdle makes n connections, connsDialers at a time, and waits until the
// server has completed all of them too. It returns how many handshakes the
// server refused before the client's completed, how long the clients took,
// and what awaitServed saw; any other failure fails it. The time is the
// clients' alone: a server handshake that never completes (see
// awaitServed) keeps awaitServed waiting for a minute, on either stack.
func dialIdle(ctx context.Context, f fleet, n int) (refused int, took time.Duration, sv served, err error) {
	var (
		next   atomic.Int64
		nref   atomic.Int64
		errs   = make([]error, connsDialers)
		wg     sync.WaitGroup
		before = f.census()
		start  = time.Now()
	)
	for w := range errs {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				err := f.dial(ctx, i)
				switch {
				case refusedErr(err):
					nref.Add(1)
				case err != nil:
					errs[w] = fmt.Errorf("connection %d of %d: %w", i+1, n, err)
					return
				}
			}
		})
	}
	wg.Wait()
	took = time.Since(start)
	if err := errors.Join(errs...); err != nil {
		return 0, 0, served{}, err
	}
	sv, err = awaitServed(ctx, f, n-int(nref.Load()), before)
	return int(nref.Load()), took, sv, err
}

// stallWait is how long awaitServed waits for the next report before it
// looks whether the connections it waits for have ended instead.
const stallWait = 2 * time.Second

// serveGiveUp is how long awaitServed waits without any report before it
// stops: by then every handshake the server has begun has completed or
// failed, the handshake budget being shorter.
var serveGiveUp = connsSettings.HandshakeTimeout + 10*time.Second

// served is what awaitServed saw.
type served struct {
	last     time.Time // when the last completed handshake was reported
	failed   int       // server handshakes that failed
	halfOpen int       // clients complete whose server side never completed
}

// awaitServed waits for the server's reports of n completed handshakes
// whose client side is complete, less those of the clients that have ended
// since the census before: a client refused after its handshake has no
// server side. A server handshake can fail although the client's has
// completed (its last flight lost, and the retransmission later than the
// server's handshake timeout), or belong to no client (a late copy of a
// client's first packet that opens a connection after its own has moved
// on); both are counted, and the clients left without a server side once
// nothing more can come are half-open.
func awaitServed(ctx context.Context, f fleet, n int, before census) (served, error) {
	stall := time.NewTimer(stallWait)
	defer stall.Stop()
	res := served{last: time.Now()}
	lastReport := time.Now()
	got := 0
	for got < n {
		select {
		case err := <-f.served():
			if err != nil {
				res.failed++
			} else {
				got++
				res.last = time.Now()
			}
			lastReport = time.Now()
			stall.Reset(stallWait)
		case <-stall.C:
			c := f.census()
			gone := c.refused - before.refused + c.lostClients - before.lostClients
			if got+gone >= n {
				return res, nil
			}
			if time.Since(lastReport) >= serveGiveUp {
				res.halfOpen = n - got - gone
				return res, nil
			}
			stall.Reset(stallWait)
		case <-ctx.Done():
			return res, fmt.Errorf("the server completed %d of %d handshakes whose client had completed (%d failed; %v; accept loop: %v): %w",
				got, n, res.failed, f.census(), f.acceptErr(), context.Cause(ctx))
		}
	}
	return res, nil
}

// stormResult is what storm measured.
type stormResult struct {
	took    time.Duration   // until both sides of every handshake completed
	lat     []time.Duration // each client's handshake
	refused int             // refused before the client's handshake completed
	served  served
}

// storm starts n handshakes at the same instant and measures them: the
// time until both sides of all of them were complete is the later of the
// last client's handshake and the server's last report. A client handshake
// that fails for another reason than a refusal fails the workload.
func storm(ctx context.Context, f fleet, first, n int, before census) (stormResult, error) {
	var (
		wg      sync.WaitGroup
		go_     = make(chan struct{})
		lat     = make([]time.Duration, n)
		errs    = make([]error, n)
		refused atomic.Int64
	)
	for i := range n {
		wg.Go(func() {
			<-go_
			t0 := time.Now()
			err := f.dial(ctx, first+i)
			lat[i] = time.Since(t0)
			if refusedErr(err) {
				refused.Add(1)
				return
			}
			errs[i] = err
		})
	}
	start := time.Now()
	close(go_)
	wg.Wait()
	clientsDone := time.Now()
	if err := errors.Join(errs...); err != nil {
		return stormResult{}, fmt.Errorf("storm: %w", err)
	}
	sv, err := awaitServed(ctx, f, n-int(refused.Load()), before)
	if err != nil {
		return stormResult{}, fmt.Errorf("storm: %w", err)
	}
	last := sv.last
	if last.Before(clientsDone) {
		last = clientsDone
	}
	return stormResult{took: last.Sub(start), lat: lat, refused: int(refused.Load()), served: sv}, nil
}

// awaitGoroutines waits, at most max, until no more than n goroutines are
// left: the goroutines of closed connections exit after Close returns,
// and slowly on a loaded machine. Like goleak, it can only look again.
func awaitGoroutines(n int, max time.Duration) {
	deadline := time.Now().Add(max)
	for runtime.NumGoroutine() > n && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
}

// refusedErr reports whether a handshake failed because the server refused
// it (CONNECTION_REFUSED), as quic-go does when its accept queue is full.
func refusedErr(err error) bool {
	var te *quic.TransportError
	if errors.As(err, &te) && te.ErrorCode == quic.ConnectionRefused {
		return true
	}
	var ce *qerr.ConnectionError
	return errors.As(err, &ce) && ce.Reason == qerr.ShutdownByTransport && ce.Code == uint64(quic.ConnectionRefused)
}

// clientSockets opens n UDP sockets on 127.0.0.1.
func clientSockets(n int) ([]*net.UDPConn, error) {
	var out []*net.UDPConn
	for range n {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			for _, o := range out {
				o.Close()
			}
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// ---- raw quic-go ----

type rawFleet struct {
	cr      *creds
	udp     *net.UDPConn // server
	tr      *quic.Transport
	ln      *quic.EarlyListener
	trs     []*quic.Transport // clients'
	results chan error
	closing chan struct{} // closed by close: nobody reads results any more
	wg      sync.WaitGroup

	mu               sync.Mutex
	clients, servers []*quic.Conn
	acceptErrV       error
}

func newRawFleet(cr *creds, p connsParams) (*rawFleet, error) {
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	socks, err := clientSockets(p.sockets)
	if err != nil {
		udp.Close()
		return nil, err
	}
	f := &rawFleet{cr: cr, udp: udp, tr: &quic.Transport{Conn: udp}, results: make(chan error, p.conns+p.storm), closing: make(chan struct{})}
	for _, s := range socks {
		f.trs = append(f.trs, &quic.Transport{Conn: s})
	}
	if f.ln, err = f.tr.ListenEarly(cr.server.ServerTLSConfig([]string{alpn}), connsQUICConfig()); err != nil {
		f.close()
		return nil, err
	}
	f.wg.Go(f.accept)
	return f, nil
}

// accept takes every connection as soon as quic-go offers it, and waits for
// its handshake in a goroutine of its own, so that quic-go's accept queue
// never fills.
func (f *rawFleet) accept() {
	for {
		c, err := f.ln.Accept(context.Background())
		if err != nil {
			f.mu.Lock()
			f.acceptErrV = err
			f.mu.Unlock()
			return
		}
		f.wg.Go(func() {
			select {
			case <-c.HandshakeComplete():
				f.mu.Lock()
				f.servers = append(f.servers, c)
				f.mu.Unlock()
				f.report(nil)
			case <-c.Context().Done():
				f.report(context.Cause(c.Context()))
			}
		})
	}
}

func (f *rawFleet) dial(ctx context.Context, i int) error {
	tr := f.trs[i%len(f.trs)]
	c, err := tr.Dial(ctx, f.udp.LocalAddr(), f.cr.client.ClientTLSConfig("127.0.0.1", []string{alpn}), connsQUICConfig())
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.clients = append(f.clients, c)
	f.mu.Unlock()
	return nil
}

func (f *rawFleet) served() <-chan error { return f.results }

func (f *rawFleet) report(err error) {
	select {
	case f.results <- err:
	case <-f.closing:
	}
}

func (f *rawFleet) acceptErr() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.acceptErrV
}

func (f *rawFleet) census() census {
	f.mu.Lock()
	defer f.mu.Unlock()
	var c census
	for _, qc := range f.clients {
		switch {
		case qc.Context().Err() == nil:
			c.clients++
		case refusedErr(context.Cause(qc.Context())):
			c.refused++
		default:
			c.lostClients++
		}
	}
	for _, qc := range f.servers {
		if qc.Context().Err() == nil {
			c.servers++
		} else {
			c.lostServers++
		}
	}
	return c
}

func (f *rawFleet) close() error {
	close(f.closing)
	f.mu.Lock()
	conns := append(f.clients, f.servers...)
	f.clients, f.servers = nil, nil
	f.mu.Unlock()
	// The clients first, then the servers, as the quicconn fleet does.
	for _, c := range conns {
		c.CloseWithError(0, "")
	}
	var errs []error
	for _, tr := range f.trs {
		errs = append(errs, tr.Close(), tr.Conn.Close())
	}
	if f.ln != nil {
		f.ln.Close()
	}
	errs = append(errs, f.tr.Close(), f.udp.Close())
	f.wg.Wait()
	return errors.Join(errs...)
}

// ---- quicconn ----

type connFleet struct {
	cr      *creds
	cfg     *conn.Configuration // the server's
	ccfg    *conn.Configuration // the clients': no resumption or confirmation wait, as raw quic-go
	sreg    *conn.Registration
	creg    *conn.Registration
	ln      *conn.Listener
	port    uint16
	socks   []*net.UDPConn
	results chan error
	closing chan struct{} // closed by close: nobody reads results any more
	wg      sync.WaitGroup

	mu               sync.Mutex
	clients, servers []*conn.Connection
	acceptErrV       error
}

func newConnFleet(cr *creds, p connsParams) (*connFleet, error) {
	cfg, err := conn.NewConfiguration([]string{alpn}, connsSettings)
	if err != nil {
		return nil, err
	}
	ccfg, err := conn.NewConfiguration([]string{alpn}, withClient(connsSettings, true))
	if err != nil {
		return nil, err
	}
	socks, err := clientSockets(p.sockets)
	if err != nil {
		return nil, err
	}
	f := &connFleet{cr: cr, cfg: cfg, ccfg: ccfg, socks: socks, results: make(chan error, p.conns+p.storm), closing: make(chan struct{}),
		sreg: conn.NewRegistration("perf-conns-server"), creg: conn.NewRegistration("perf-conns-client")}
	if f.ln, err = conn.Listen(f.sreg, "127.0.0.1:0", cfg, cr.server); err != nil {
		f.close()
		return nil, err
	}
	f.port = uint16(f.ln.Addr().(*net.UDPAddr).Port)
	f.wg.Go(f.accept)
	return f, nil
}

// accept calls Listener.Accept again at once for every connection, and
// waits for each handshake in a goroutine of its own, so that neither the
// listener's backlog nor quic-go's accept queue fills.
func (f *connFleet) accept() {
	for {
		c, err := f.ln.Accept(context.Background())
		if err != nil {
			f.mu.Lock()
			f.acceptErrV = err
			f.mu.Unlock()
			return
		}
		f.wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*connsSettings.HandshakeTimeout)
			defer cancel()
			err := c.Accept(ctx)
			if err == nil {
				f.mu.Lock()
				f.servers = append(f.servers, c)
				f.mu.Unlock()
			} else if trace {
				log.Printf("perf: connections: server handshake: %v", err)
			}
			f.report(err)
		})
	}
}

func (f *connFleet) dial(ctx context.Context, i int) error {
	c, err := conn.New(f.creg, f.cr.client, conn.WithPacketConn(f.socks[i%len(f.socks)]))
	if err != nil {
		return err
	}
	if err := c.Start(ctx, f.ccfg, "127.0.0.1", f.port); err != nil {
		return err
	}
	f.mu.Lock()
	f.clients = append(f.clients, c)
	f.mu.Unlock()
	return nil
}

func (f *connFleet) served() <-chan error { return f.results }

func (f *connFleet) report(err error) {
	select {
	case f.results <- err:
	case <-f.closing:
	}
}

func (f *connFleet) acceptErr() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.acceptErrV
}

func (f *connFleet) census() census {
	f.mu.Lock()
	defer f.mu.Unlock()
	var c census
	for _, cc := range f.clients {
		switch {
		case cc.State() == conn.Connected:
			c.clients++
		case refusedErr(cc.Err()):
			c.refused++
		default:
			c.lostClients++
		}
	}
	for _, sc := range f.servers {
		if sc.State() == conn.Connected {
			c.servers++
		} else {
			c.lostServers++
		}
	}
	return c
}

func (f *connFleet) close() error {
	close(f.closing)
	// The clients first, as the raw fleet does: each sends its
	// CONNECTION_CLOSE, and Registration.Close returns when all are gone.
	var errs []error
	errs = append(errs, f.creg.Close())
	if f.ln != nil {
		f.ln.Close()
	}
	errs = append(errs, f.sreg.Close())
	f.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	errs = append(errs, f.creg.WaitIdle(ctx), f.sreg.WaitIdle(ctx))
	for _, s := range f.socks {
		errs = append(errs, s.Close())
	}
	return errors.Join(errs...)
}
