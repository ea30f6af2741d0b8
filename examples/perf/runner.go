package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/quicconn/quicconn/certverify"
)

const (
	qgo = "quic-go"
	qc  = "quicconn"
	tcp = "TCP+TLS"
)

// A sample is what a workload gets to measure one transport once.
type sample struct {
	b     backend
	idle  idleHolder // the transport's hold-mode backend (idle workload)
	cr    *creds
	round int
}

// A step is one workload: a group of rows in the table.
type step struct {
	workload string
	family   string // the -workloads name
	run      func(ctx context.Context, s sample) (figures, error)
	metrics  []metricSpec
	// cpu names the row of the process's CPU time per operation (opsKey),
	// "" for none.
	cpu      string
	quicOnly bool
	local    bool // needs both sides in this process
	rounds   int  // runs in the first rounds only; 0 means every round
}

// A metricSpec is one row of a step.
type metricSpec struct {
	name     string
	higher   bool // higher is better
	contract contract
	count    bool // counts events that should not happen: no ratios
}

// A contract is the performance contract of a row, checked on the value the
// table prints, so that the printed figure and the verdict always agree.
type contract struct {
	kind  contractKind
	limit float64
	unit  string // for extraAtMost
}

type contractKind int

const (
	noContract   contractKind = iota
	ratioAtLeast              // quicconn / quic-go ≥ limit
	extraAtMost               // quicconn − quic-go ≤ limit
	valueIs                   // quicconn's value == limit
)

// The performance contract of DESIGN.md, and the targets for many
// connections.
var (
	rateContract      = contract{kind: ratioAtLeast, limit: 0.95}
	idleHeapContract  = contract{kind: extraAtMost, limit: 4096, unit: " B"}
	idleGoroutines    = contract{kind: extraAtMost, limit: 2}
	connsHeapContract = contract{kind: extraAtMost, limit: 2048, unit: " B"}
	connsGoroutines   = contract{kind: extraAtMost, limit: 0}
	zeroContract      = contract{kind: valueIs, limit: 0}
)

func (c contract) String() string {
	switch c.kind {
	case ratioAtLeast:
		return fmt.Sprintf("≥%.2f× quic-go", c.limit)
	case extraAtMost:
		return fmt.Sprintf("≤ +%g%s", c.limit, c.unit)
	case valueIs:
		return fmt.Sprintf("= %g", c.limit)
	}
	return ""
}

// verdict checks m against c, on the rounded values the table shows; ""
// when the contract does not apply (no contract, or a figure is missing).
func (c contract) verdict(m *metric) (meets bool, applies bool) {
	switch c.kind {
	case ratioAtLeast:
		if m.RatioQUICGo == nil {
			return false, false
		}
		return shown(ratio(m.RatioQUICGo)) >= c.limit, true
	case extraAtMost:
		if m.ExtraOverQUICGo == nil {
			return false, false
		}
		return shown(extra(*m.ExtraOverQUICGo)) <= c.limit, true
	case valueIs:
		v, ok := m.Median[qc]
		if !ok {
			return false, false
		}
		return shown(num(v)) == c.limit, true
	}
	return false, false
}

// failWord is what a missed contract of this kind is called in the table.
func (c contract) failWord() string {
	switch c.kind {
	case ratioAtLeast:
		return "below"
	case extraAtMost:
		return "above"
	}
	return "not met"
}

func steps(p params) []step {
	rps := func(c int) step {
		return step{
			workload: fmt.Sprintf("rps c=%d", c),
			family:   "rps",
			run: func(ctx context.Context, s sample) (figures, error) {
				return requests(ctx, s.b, c, p.dur)
			},
			metrics: []metricSpec{{"req/s", true, rateContract, false}, {"p50 µs", false, contract{}, false}, {"p99 µs", false, contract{}, false}},
			cpu:     cpuKey,
		}
	}
	hs := func(c int, name string) step {
		return step{
			workload: name,
			family:   "handshakes",
			run: func(ctx context.Context, s sample) (figures, error) {
				return handshakes(ctx, s.b, c, p.dur)
			},
			metrics: []metricSpec{{"/s", true, rateContract, false}},
			cpu:     cpuKey,
		}
	}
	bulkName := fmt.Sprintf("bulk %d MiB", p.bulkSize>>20)
	if p.bulkDur > 0 {
		bulkName = "bulk " + p.bulkDur.String()
	}
	all := []step{
		{
			workload: bulkName,
			family:   "bulk",
			run: func(ctx context.Context, s sample) (figures, error) {
				return bulk(ctx, s.b, p.bulkSize, p.bulkDur)
			},
			metrics: []metricSpec{{"MB/s", true, rateContract, false}},
			cpu:     "CPU µs/MiB",
		},
		rps(1),
		rps(32),
		{
			workload: "datagrams 1100 B",
			family:   "datagrams",
			run: func(ctx context.Context, s sample) (figures, error) {
				return datagrams(ctx, s.b, p.dur)
			},
			metrics: []metricSpec{
				{"sent/s", true, contract{}, false}, {"received/s", true, rateContract, false}, {"loss %", false, contract{}, false},
			},
			cpu:      cpuKey,
			quicOnly: true,
		},
		hs(1, "handshakes seq"),
		hs(8, "handshakes c=8"),
		{
			workload: "handshakes resumed",
			family:   "handshakes",
			run: func(ctx context.Context, s sample) (figures, error) {
				return handshakesResumed(ctx, s.b, p.dur)
			},
			metrics:  []metricSpec{{"/s", true, contract{}, false}, {"resumed %", true, contract{}, false}},
			cpu:      cpuKey,
			quicOnly: true,
		},
		{
			workload: fmt.Sprintf("idle %d conns", p.idleConns),
			family:   "idle",
			run: func(ctx context.Context, s sample) (figures, error) {
				waitQuiet()
				return idle(ctx, s.b.Name(), s.idle, p.idleConns)
			},
			metrics: []metricSpec{
				{"heap B/conn/side", false, idleHeapContract, false},
				{"goroutines/conn/side", false, idleGoroutines, false},
				{"stack B/conn/side", false, contract{}, false},
			},
			local: true,
		},
		{
			workload: fmt.Sprintf("connections %d+%d", p.conns, p.storm),
			family:   "connections",
			run: func(ctx context.Context, s sample) (figures, error) {
				return connections(ctx, s.b.Name(), s.cr, connsParams{conns: p.conns, storm: p.storm, sockets: p.connsSockets})
			},
			metrics:  connectionsMetrics,
			quicOnly: true,
			local:    true,
			rounds:   p.connsRounds,
		},
		{
			workload: p.wan.String(),
			family:   "wan",
			run: func(ctx context.Context, s sample) (figures, error) {
				return wan(ctx, s.b.Name(), s.cr, p.wan, int64(s.round))
			},
			metrics:  wanMetrics,
			quicOnly: true,
			local:    true,
		},
	}
	var out []step
	for _, s := range all {
		if p.only == nil && !optIn[s.family] || p.only[s.family] {
			out = append(out, s)
		}
	}
	return out
}

// runs reports whether s runs on backend name in round (0-based).
func (s *step) runs(name string, datagrams bool, round int) bool {
	if s.quicOnly && !datagrams {
		return false
	}
	return s.rounds == 0 || round < s.rounds
}

func runRounds(ctx context.Context, p params, connect, peer string, prog progress) (*report, error) {
	rep := &report{
		GoVersion: runtime.Version(), GOMAXPROCS: runtime.GOMAXPROCS(0), Rounds: p.rounds,
		Duration: p.dur.String(), IdleConns: p.idleConns, KeyExchange: map[string]string{},
		Conns: p.conns, Storm: p.storm, ConnsSocks: p.connsSockets, WAN: p.wan.String(),
		LoadBefore: loadavg(),
	}
	if p.bulkDur > 0 {
		rep.BulkDur = p.bulkDur.String()
	} else {
		rep.BulkBytes = p.bulkSize
	}
	start := time.Now()

	var (
		backends []backend
		holders  = map[string]idleHolder{}
		cr       *creds
	)
	if connect != "" {
		cred, err := certverify.GenerateSelfSigned([]string{"perf-client"}, nil)
		if err != nil {
			return nil, err
		}
		if peer != "" {
			h, err := certverify.ParseCertHash(peer)
			if err != nil {
				return nil, fmt.Errorf("-peer: %w", err)
			}
			cred.TrustHashes(h)
		} else {
			log.Print("perf: no -peer: accepting any well-formed server certificate (AcceptUnpinned)")
			cred.AcceptUnpinned = true
			cred.Logger = slog.New(slog.DiscardHandler) // said once, above
		}
		rb, err := newRemoteBackend(connect, cred)
		if err != nil {
			return nil, err
		}
		backends = []backend{rb}
	} else {
		var err error
		if cr, err = newCreds(); err != nil {
			return nil, err
		}
		all, err := newBackends(cr, false)
		if err != nil {
			return nil, err
		}
		for _, b := range all {
			if p.backends == nil || p.backends[b.Name()] {
				backends = append(backends, b)
			} else {
				defer b.Close()
			}
		}
		hold, err := newBackends(cr, true)
		if err != nil {
			return nil, err
		}
		for _, b := range hold {
			holders[b.Name()] = b.(idleHolder)
			defer b.Close()
		}
	}
	defer func() {
		for _, b := range backends {
			b.Close()
		}
	}()
	for _, b := range backends {
		rep.Backends = append(rep.Backends, b.Name())
		s, err := b.Dial(ctx)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", b.Name(), err)
		}
		rep.KeyExchange[b.Name()] = s.KeyExchange()
		s.Close()
	}
	if rep.KeyExchange[qc] == "" {
		// quicconn does not expose its TLS state; it runs crypto/tls with
		// the same config and the same default curve list as quic-go here.
		rep.KeyExchange[qc] = sameAsQUICGo
	}

	var sts []step
	for _, s := range steps(p) {
		if !s.local || connect == "" {
			sts = append(sts, s)
		}
	}
	// A run with only workloads that stop early (connections) ends with
	// them.
	rounds := 0
	for _, s := range sts {
		if s.rounds == 0 {
			rounds = p.rounds
		} else {
			rounds = max(rounds, min(s.rounds, p.rounds))
		}
	}
	rep.Rounds = rounds
	var metrics []*metric
	index := map[string]*metric{}
	total := 0
	for _, s := range sts {
		specs := s.metrics
		if s.cpu != "" {
			specs = append(slices.Clip(specs), metricSpec{name: s.cpu})
		}
		for _, ms := range specs {
			m := &metric{Workload: s.workload, Name: ms.name, HigherIsBetter: ms.higher, Contract: ms.contract.String(),
				contract: ms.contract, count: ms.count, Samples: map[string][]float64{}, Median: map[string]float64{}}
			metrics = append(metrics, m)
			index[s.workload+"\x00"+ms.name] = m
		}
		for round := range rounds {
			for _, b := range backends {
				if s.runs(b.Name(), b.Datagrams(), round) {
					total++
				}
			}
		}
	}
	prog.start(total, rounds)
	defer prog.finish()
	for round := range rounds {
		roundStart := time.Now()
		for si, s := range sts {
			// Rotate the order each round: A B C, B C A, C A B, …
			order := slices.Clone(backends)
			k := (round + si) % len(order)
			order = append(order[k:], order[:k]...)
			for _, b := range order {
				if !s.runs(b.Name(), b.Datagrams(), round) {
					continue
				}
				prog.sample(round, s.workload, b.Name())
				wctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
				cpu0 := cpuTime()
				f, err := s.run(wctx, sample{b: b, idle: holders[b.Name()], cr: cr, round: round})
				cpu := cpuTime() - cpu0
				cancel()
				if err != nil {
					return nil, fmt.Errorf("%s over %s: %w", s.workload, b.Name(), err)
				}
				if ops, ok := f[opsKey]; ok {
					delete(f, opsKey)
					if s.cpu != "" && ops > 0 && cpu > 0 {
						f[s.cpu] = float64(cpu.Microseconds()) / ops
					}
				}
				for n, v := range f {
					m := index[s.workload+"\x00"+n]
					if m == nil {
						return nil, fmt.Errorf("%s: unexpected figure %q", s.workload, n)
					}
					m.Samples[b.Name()] = append(m.Samples[b.Name()], v)
				}
				if trace {
					var ms runtime.MemStats
					runtime.ReadMemStats(&ms)
					log.Printf("perf: round %d %s %s: %v; goroutines %d, heap %d KiB", round+1, s.workload, b.Name(), f, runtime.NumGoroutine(), ms.HeapAlloc>>10)
				}
			}
		}
		prog.roundDone(round, time.Since(roundStart))
	}
	for _, m := range metrics {
		for b, v := range m.Samples {
			m.Median[b] = median(v)
		}
		m.fillRatios()
	}
	rep.Metrics = metrics
	rep.LoadAfter = loadavg()
	rep.Elapsed = time.Since(start).Round(time.Millisecond).String()
	return rep, nil
}

// newBackends starts the three transports' servers.
func newBackends(cr *creds, hold bool) ([]backend, error) {
	var out []backend
	for _, mk := range []func(*creds, bool) (backend, error){
		func(cr *creds, hold bool) (backend, error) { return newRawBackend(cr, hold) },
		func(cr *creds, hold bool) (backend, error) { return newConnBackend(cr, hold) },
		func(cr *creds, hold bool) (backend, error) { return newTCPBackend(cr, hold) },
	} {
		b, err := mk(cr, hold)
		if err != nil {
			for _, o := range out {
				o.Close()
			}
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

func (m *metric) fillRatios() {
	c, ok := m.Median[qc]
	if !ok {
		return
	}
	if g, ok := m.Median[qgo]; ok {
		if r, ok := pairedRatio(m.Samples[qc], m.Samples[qgo]); ok && !m.count {
			m.RatioQUICGo = &r
		}
		x := c - g
		m.ExtraOverQUICGo = &x
	}
	if r, ok := pairedRatio(m.Samples[qc], m.Samples[tcp]); ok && !m.count {
		m.RatioTCP = &r
	}
	if meets, ok := m.contract.verdict(m); ok {
		m.MeetsContract = &meets
	}
}

// pairedRatio is the median over the rounds of a[i]/b[i]: the two samples of
// a round were taken moments apart, so their ratio is what drift of the
// machine disturbs least.
func pairedRatio(a, b []float64) (float64, bool) {
	if len(a) == 0 || len(a) != len(b) {
		return 0, false
	}
	var rs []float64
	for i := range a {
		if b[i] > 0 && a[i] >= 0 { // a baseline at or below 0 (TCP's idle stack) has no ratio
			rs = append(rs, a[i]/b[i])
		}
	}
	if len(rs) == 0 {
		return 0, false
	}
	return median(rs), true
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(v))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// progress reports the run's advance on stderr.
type progress interface {
	start(samples, rounds int)
	sample(round int, workload, backend string)
	roundDone(round int, took time.Duration)
	finish()
}

type nopProgress struct{}

func (nopProgress) start(int, int)               {}
func (nopProgress) sample(int, string, string)   {}
func (nopProgress) roundDone(int, time.Duration) {}
func (nopProgress) finish()                      {}

// lineProgress prints a line per round, for logs and pipes.
type lineProgress struct {
	w       io.Writer
	rounds  int
	started time.Time
}

func (p *lineProgress) start(_, rounds int)        { p.rounds, p.started = rounds, time.Now() }
func (p *lineProgress) sample(int, string, string) {}
func (p *lineProgress) finish()                    {}

func (p *lineProgress) roundDone(round int, took time.Duration) {
	fmt.Fprintf(p.w, "perf: round %d/%d done in %v (elapsed %v)\n", round+1, p.rounds,
		took.Round(100*time.Millisecond), time.Since(p.started).Round(time.Second))
}

// barProgress is a progress bar over the samples, on a terminal.
type barProgress struct {
	w      io.Writer
	rounds int
	bar    *progressbar.ProgressBar
	n      int
}

func (p *barProgress) start(samples, rounds int) {
	p.rounds = rounds
	p.bar = progressbar.NewOptions(samples, progressbar.OptionSetWriter(p.w),
		progressbar.OptionShowCount(), progressbar.OptionClearOnFinish(),
		progressbar.OptionSetWidth(30), progressbar.OptionSetElapsedTime(true),
		progressbar.OptionSetPredictTime(true))
}

// sample describes the sample that starts, and counts the one before it
// as done.
func (p *barProgress) sample(round int, workload, backend string) {
	if p.n > 0 {
		p.bar.Add(1)
	}
	p.n++
	p.bar.Describe(fmt.Sprintf("round %d/%d %-22s %-8s", round+1, p.rounds, workload, backend))
}

func (p *barProgress) roundDone(int, time.Duration) {}

func (p *barProgress) finish() {
	if p.bar != nil {
		p.bar.Finish()
	}
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// waitQuiet waits, up to 3 s, until the goroutine count has been stable for
// 100 ms, so that connections closed by the previous workload are gone
// before a workload takes its baseline. It polls: goroutines that exit give
// no signal to wait on, and this is a measuring tool, not library code.
func waitQuiet() {
	deadline := time.Now().Add(3 * time.Second)
	last, since := runtime.NumGoroutine(), time.Now()
	for time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		if n := runtime.NumGoroutine(); n != last {
			last, since = n, time.Now()
		} else if time.Since(since) >= 100*time.Millisecond {
			return
		}
	}
}
