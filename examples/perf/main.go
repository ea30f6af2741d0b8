// Command perf measures quicconn side by side with raw quic-go and with
// TCP + crypto/tls 1.3, in one run on 127.0.0.1.
//
// It runs each workload over the three transports in alternation — every
// round runs every transport once, in a rotated order, so that drift of the
// machine (other processes, frequency scaling) hits all of them — and prints
// the medians over the rounds with the ratios quicconn/quic-go and
// quicconn/TCP+TLS (each the median of the per-round ratios):
//
//	bulk        one stream, 256 MiB in 64 KiB writes (MB/s)
//	rps c=N     1 KiB request, 1 KiB response, one stream per request, N
//	            concurrent requesters (requests/s, p50 and p99 latency);
//	            over TCP each requester keeps one connection
//	datagrams   1,100-byte datagrams as fast as they are taken, for a fixed
//	            time (sent/s, received/s, loss)
//	handshakes  full handshakes with mutual authentication, new socket each,
//	            sequential and 8 concurrent (per second)
//	idle        500 idle connections: heap bytes, goroutines and stack
//	            bytes per connection and side (both sides live in this
//	            process; the increase is divided by 2 × connections)
//
// Each workload also reports the process's CPU time per operation (per MiB
// for bulk), both sides together: on a busy machine it is steadier than the
// rates, which depend on what else gets the CPUs.
//
// All three use the same certificates (ECDSA P-256 from
// certverify.GenerateSelfSigned, pinned by hash both ways) and the very TLS
// configs certverify builds (Credential.ClientTLSConfig/ServerTLSConfig),
// so certificate verification costs the same. Those configs leave the key
// exchange to crypto/tls's default, which in Go 1.24+ is the hybrid
// X25519MLKEM768 (about 45 % slower handshakes); this program pins the
// default to X25519 for all three with the go:debug directive below. Run
// with GODEBUG=tlsmlkem=1 to measure the hybrid default instead. Both QUIC
// sides use the same settings (see settings in backend.go).
//
// Usage:
//
//	go run ./examples/perf              # full run: 7 rounds, about 5 minutes
//	go run ./examples/perf -quick       # under a minute, smaller sizes
//	go run ./examples/perf -json        # machine-readable results on stdout
//	go run ./examples/perf -workloads handshakes,idle -transports quic-go,quicconn -rounds 7
//	go run ./examples/perf -workloads bulk -cpuprofile cpu.out   # then go tool pprof
//
// On a terminal a progress bar runs on stderr (not with -json). Rates on a
// shared machine move with its load: the table header shows the load
// average before and after, and -rounds trades time for steadier medians.
//
// Between two processes or machines, quicconn only (no ratios):
//
//	go run ./examples/perf -listen 0.0.0.0:4433   # serves every workload, prints its identity
//	go run ./examples/perf -connect host:4433 -peer <identity>
//
// The server accepts any well-formed client certificate; without -peer the
// client accepts any well-formed server certificate. The idle workload needs
// both sides in one process and is skipped with -connect, and CPU per
// operation then counts the client's side only.
//
//go:debug tlsmlkem=0
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/quicconn/quicconn/certverify"
	"github.com/quicconn/quicconn/conn"
)

// trace (PERF_TRACE=1 in the environment) logs every sample with the
// process's goroutine count and heap, to spot drift between rounds.
var trace = os.Getenv("PERF_TRACE") != ""

type params struct {
	rounds    int
	bulkSize  int64
	bulkDur   time.Duration
	dur       time.Duration
	idleConns int
	only      map[string]bool
	backends  map[string]bool
}

func main() {
	var (
		quick      = flag.Bool("quick", false, "finish in under a minute: smaller sizes, shorter durations, 2 rounds")
		jsonOut    = flag.Bool("json", false, "print the results as JSON on stdout")
		jsonFile   = flag.String("json-file", "", "also write the results as JSON to this file")
		rounds     = flag.Int("rounds", 7, "rounds; each runs every workload once per transport")
		bulkMiB    = flag.Int64("bulk-mib", 256, "MiB sent by the bulk workload")
		bulkDur    = flag.Duration("bulk-duration", 0, "if set, the bulk workload sends for this long instead of -bulk-mib")
		dur        = flag.Duration("duration", 2*time.Second, "length of each timed workload (rps, datagrams, handshakes)")
		idleConns  = flag.Int("idle-conns", 500, "connections of the idle workload")
		workloads  = flag.String("workloads", "", "comma-separated subset of bulk,rps,datagrams,handshakes,idle")
		transports = flag.String("transports", "", "comma-separated subset of quic-go,quicconn,TCP+TLS (ratios need quicconn and the other)")
		listen     = flag.String("listen", "", "serve every workload over quicconn on this UDP address and wait")
		connect    = flag.String("connect", "", "run the workloads over quicconn against a -listen server")
		peer       = flag.String("peer", "", "with -connect: the identity (certificate hash) the server printed")
		cpuProfile = flag.String("cpuprofile", "", "write a CPU profile of the run to this file")
		memProfile = flag.String("memprofile", "", "write heap profiles of the idle connections to this file + \".\" + transport")
	)
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("perf: ")

	p := params{rounds: *rounds, bulkSize: *bulkMiB << 20, bulkDur: *bulkDur, dur: *dur, idleConns: *idleConns}
	if *quick {
		p = params{rounds: 2, bulkSize: 32 << 20, dur: 400 * time.Millisecond, idleConns: 200}
	}
	if *workloads != "" {
		p.only = map[string]bool{}
		for w := range strings.SplitSeq(*workloads, ",") {
			p.only[strings.TrimSpace(w)] = true
		}
	}
	if *transports != "" {
		p.backends = map[string]bool{}
		for b := range strings.SplitSeq(*transports, ",") {
			p.backends[strings.TrimSpace(b)] = true
		}
	}
	if *listen != "" {
		if err := serve(*listen); err != nil {
			log.Fatal(err)
		}
		return
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	if *memProfile != "" {
		runtime.MemProfileRate = 1 // exact figures; slows the run down
		heapProfile = func(backend string) {
			f, err := os.Create(*memProfile + "." + strings.ReplaceAll(backend, "+", "-"))
			if err != nil {
				log.Fatal(err)
			}
			defer f.Close()
			if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
				log.Fatal(err)
			}
		}
	}
	rep, err := run(p, *connect, *peer, !*jsonOut && term.IsTerminal(int(os.Stderr.Fd())))
	if err != nil {
		log.Fatal(err)
	}
	if *jsonFile != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			log.Fatal(err)
		}
		if err := os.WriteFile(*jsonFile, append(b, '\n'), 0o644); err != nil {
			log.Fatal(err)
		}
	}
	if *jsonOut {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			log.Fatal(err)
		}
		return
	}
	rep.print(os.Stdout)
}

// serve is -listen: a quicconn server for every workload, until interrupted.
func serve(addr string) error {
	cred, err := certverify.GenerateSelfSigned([]string{"perf-server"}, nil)
	if err != nil {
		return err
	}
	// Clients make a fresh certificate per run, so there is nothing to pin:
	// a benchmark endpoint accepts any well-formed one. Said once here
	// rather than per handshake, which would flood the handshake rows.
	cred.AcceptUnpinned = true
	cred.Logger = slog.New(slog.DiscardHandler)
	log.Print("perf: accepting any well-formed client certificate (AcceptUnpinned)")
	cfg, err := conn.NewConfiguration([]string{alpn}, settings)
	if err != nil {
		return err
	}
	reg := conn.NewRegistration("perf-server")
	defer reg.Close()
	ln, err := conn.Listen(reg, addr, cfg, cred)
	if err != nil {
		return err
	}
	fmt.Printf("perf: serving quicconn on %s\nperf: identity %s\nperf: run: go run ./examples/perf -connect %s -peer %s\n",
		ln.Addr(), cred.Identity(), ln.Addr(), cred.Identity())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	srv := newServer()
	for {
		c, err := ln.Accept(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		go func() {
			if err := c.Accept(ctx); err != nil {
				return
			}
			srv.serveQUIC(connServerConn{c})
		}()
	}
}

// A metric is one row of the table.
type metric struct {
	Workload string `json:"workload"`
	Name     string `json:"metric"`
	// HigherIsBetter orients the ratios: for the rest (latency, loss, cost)
	// a ratio below 1 is better.
	HigherIsBetter bool `json:"higher_is_better"`
	// Contract is the performance contract that applies, "" if none.
	Contract string               `json:"contract,omitempty"`
	Samples  map[string][]float64 `json:"samples"`
	Median   map[string]float64   `json:"median"`
	// RatioQUICGo and RatioTCP are the medians over the rounds of
	// quicconn's sample divided by the other's of the same round;
	// ExtraOverQUICGo is quicconn's median minus quic-go's.
	RatioQUICGo     *float64 `json:"ratio_quicconn_quicgo,omitempty"`
	RatioTCP        *float64 `json:"ratio_quicconn_tcp,omitempty"`
	ExtraOverQUICGo *float64 `json:"extra_over_quicgo,omitempty"`
	MeetsContract   *bool    `json:"meets_contract,omitempty"`
}

type report struct {
	GoVersion   string            `json:"go_version"`
	GOMAXPROCS  int               `json:"gomaxprocs"`
	Rounds      int               `json:"rounds"`
	BulkBytes   int64             `json:"bulk_bytes,omitempty"`
	BulkDur     string            `json:"bulk_duration,omitempty"`
	Duration    string            `json:"duration"`
	IdleConns   int               `json:"idle_conns"`
	KeyExchange map[string]string `json:"key_exchange"`
	LoadBefore  string            `json:"loadavg_before"`
	LoadAfter   string            `json:"loadavg_after"`
	Elapsed     string            `json:"elapsed"`
	Backends    []string          `json:"backends"`
	Metrics     []*metric         `json:"metrics"`
}

const (
	qgo = "quic-go"
	qc  = "quicconn"
	tcp = "TCP+TLS"
)

type step struct {
	workload string
	// run measures backend b once; idle holds the hold-mode backends.
	run func(ctx context.Context, b backend, idle idleHolder) (figures, error)
	// metrics: name → higher is better, contract
	names    []string
	higher   []bool
	contract []string
	quicOnly bool
	local    bool // needs both sides in this process
}

func steps(p params) []step {
	thr := "≥0.95× quic-go"
	rps := func(c int) step {
		return step{
			workload: fmt.Sprintf("rps c=%d", c),
			run: func(ctx context.Context, b backend, _ idleHolder) (figures, error) {
				return requests(ctx, b, c, p.dur)
			},
			names:    []string{"req/s", "p50 µs", "p99 µs", cpuKey},
			higher:   []bool{true, false, false, false},
			contract: []string{thr, "", "", ""},
		}
	}
	hs := func(c int, name string) step {
		return step{
			workload: name,
			run: func(ctx context.Context, b backend, _ idleHolder) (figures, error) {
				return handshakes(ctx, b, c, p.dur)
			},
			names: []string{"/s", cpuKey}, higher: []bool{true, false}, contract: []string{thr, ""},
		}
	}
	bulkName := fmt.Sprintf("bulk %d MiB", p.bulkSize>>20)
	if p.bulkDur > 0 {
		bulkName = "bulk " + p.bulkDur.String()
	}
	all := []step{
		{
			workload: bulkName,
			run: func(ctx context.Context, b backend, _ idleHolder) (figures, error) {
				return bulk(ctx, b, p.bulkSize, p.bulkDur)
			},
			names: []string{"MB/s", "CPU µs/MiB"}, higher: []bool{true, false}, contract: []string{thr, ""},
		},
		rps(1),
		rps(32),
		{
			workload: "datagrams 1100 B",
			run: func(ctx context.Context, b backend, _ idleHolder) (figures, error) {
				return datagrams(ctx, b, p.dur)
			},
			names:    []string{"sent/s", "received/s", "loss %", cpuKey},
			higher:   []bool{true, true, false, false},
			contract: []string{"", thr, "", ""},
			quicOnly: true,
		},
		hs(1, "handshakes seq"),
		hs(8, "handshakes c=8"),
		{
			workload: fmt.Sprintf("idle %d conns", p.idleConns),
			run: func(ctx context.Context, b backend, h idleHolder) (figures, error) {
				waitQuiet()
				return idle(ctx, b.Name(), h, p.idleConns)
			},
			names:    []string{"heap B/conn/side", "goroutines/conn/side", "stack B/conn/side"},
			higher:   []bool{false, false, false},
			contract: []string{"≤ +4096 B", "≤ +2", ""},
			local:    true,
		},
	}
	family := map[string]string{"rps c=1": "rps", "rps c=32": "rps", "handshakes seq": "handshakes", "handshakes c=8": "handshakes"}
	var out []step
	for _, s := range all {
		f := family[s.workload]
		if f == "" {
			f = strings.Fields(s.workload)[0]
		}
		if p.only == nil || p.only[f] {
			out = append(out, s)
		}
	}
	return out
}

func run(p params, connect, peer string, progress bool) (*report, error) {
	rep := &report{
		GoVersion: runtime.Version(), GOMAXPROCS: runtime.GOMAXPROCS(0), Rounds: p.rounds,
		Duration: p.dur.String(), IdleConns: p.idleConns, KeyExchange: map[string]string{},
		LoadBefore: loadavg(),
	}
	if p.bulkDur > 0 {
		rep.BulkDur = p.bulkDur.String()
	} else {
		rep.BulkBytes = p.bulkSize
	}
	start := time.Now()
	ctx := context.Background()

	var (
		backends []backend
		holders  = map[string]idleHolder{}
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
			log.Print("no -peer: accepting any well-formed server certificate (AcceptUnpinned)")
			cred.AcceptUnpinned = true
			cred.Logger = slog.New(slog.DiscardHandler) // said once, above
		}
		rb, err := newRemoteBackend(connect, cred)
		if err != nil {
			return nil, err
		}
		backends = []backend{rb}
	} else {
		cr, err := newCreds()
		if err != nil {
			return nil, err
		}
		rb, err := newRawBackend(cr, false)
		if err != nil {
			return nil, err
		}
		cb, err := newConnBackend(cr, false)
		if err != nil {
			return nil, err
		}
		tb, err := newTCPBackend(cr, false)
		if err != nil {
			return nil, err
		}
		for _, b := range []backend{rb, cb, tb} {
			if p.backends == nil || p.backends[b.Name()] {
				backends = append(backends, b)
			} else {
				defer b.Close()
			}
		}
		rh, err := newRawBackend(cr, true)
		if err != nil {
			return nil, err
		}
		ch, err := newConnBackend(cr, true)
		if err != nil {
			return nil, err
		}
		th, err := newTCPBackend(cr, true)
		if err != nil {
			return nil, err
		}
		holders = map[string]idleHolder{qgo: rh, qc: ch, tcp: th}
		defer func() {
			for _, b := range []backend{rh, ch, th} {
				b.Close()
			}
		}()
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
		rep.KeyExchange[qc] = "as quic-go (same config, same process default)"
	}

	sts := steps(p)
	var metrics []*metric
	index := map[string]*metric{}
	total := 0
	for _, s := range sts {
		if s.local && connect != "" {
			continue
		}
		for i, n := range s.names {
			m := &metric{Workload: s.workload, Name: n, HigherIsBetter: s.higher[i], Contract: s.contract[i],
				Samples: map[string][]float64{}, Median: map[string]float64{}}
			metrics = append(metrics, m)
			index[s.workload+"\x00"+n] = m
		}
		for _, b := range backends {
			if !s.quicOnly || b.Datagrams() {
				total++
			}
		}
	}
	total *= p.rounds
	var bar *progressbar.ProgressBar
	if progress {
		bar = progressbar.NewOptions(total, progressbar.OptionSetWriter(os.Stderr),
			progressbar.OptionShowCount(), progressbar.OptionClearOnFinish(),
			progressbar.OptionSetWidth(30), progressbar.OptionSetElapsedTime(true))
	}
	for round := range p.rounds {
		for si, s := range sts {
			if s.local && connect != "" {
				continue
			}
			// Rotate the order each round: A B C, B C A, C A B, …
			order := slices.Clone(backends)
			k := (round + si) % len(order)
			order = append(order[k:], order[:k]...)
			for _, b := range order {
				if s.quicOnly && !b.Datagrams() {
					continue
				}
				if bar != nil {
					bar.Describe(fmt.Sprintf("round %d/%d %-16s %-8s", round+1, p.rounds, s.workload, b.Name()))
				}
				wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
				cpu0 := cpuTime()
				f, err := s.run(wctx, b, holders[b.Name()])
				cpu := cpuTime() - cpu0
				cancel()
				if err != nil {
					return nil, fmt.Errorf("%s over %s: %w", s.workload, b.Name(), err)
				}
				if ops, ok := f[opsKey]; ok {
					delete(f, opsKey)
					if ops > 0 && cpu > 0 {
						name := cpuKey
						if slices.Contains(s.names, "CPU µs/MiB") {
							name = "CPU µs/MiB"
						}
						f[name] = float64(cpu.Microseconds()) / ops
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
					log.Printf("round %d %s %s: %v; goroutines %d, heap %d KiB", round+1, s.workload, b.Name(), f, runtime.NumGoroutine(), ms.HeapAlloc>>10)
				}
				if bar != nil {
					bar.Add(1)
				}
			}
		}
	}
	if bar != nil {
		bar.Finish()
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

func (m *metric) fillRatios() {
	c, ok := m.Median[qc]
	if !ok {
		return
	}
	if g, ok := m.Median[qgo]; ok {
		if r, ok := pairedRatio(m.Samples[qc], m.Samples[qgo]); ok {
			m.RatioQUICGo = &r
		}
		x := c - g
		m.ExtraOverQUICGo = &x
		var meets bool
		switch {
		case strings.HasPrefix(m.Contract, "≥"):
			meets = m.RatioQUICGo != nil && *m.RatioQUICGo >= 0.95
		case m.Contract == "≤ +4096 B":
			meets = x <= 4096
		case m.Contract == "≤ +2":
			meets = x <= 2
		}
		if m.Contract != "" {
			m.MeetsContract = &meets
		}
	}
	if r, ok := pairedRatio(m.Samples[qc], m.Samples[tcp]); ok {
		m.RatioTCP = &r
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

func (r *report) print(w io.Writer) {
	fmt.Fprintf(w, "%s, GOMAXPROCS=%d, %d rounds (medians), key exchange: %s\n",
		r.GoVersion, r.GOMAXPROCS, r.Rounds, r.keyExchange())
	fmt.Fprintf(w, "load average before: %s, after: %s; elapsed %s\n\n", r.LoadBefore, r.LoadAfter, r.Elapsed)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := []string{"workload", "metric"}
	head = append(head, r.Backends...)
	head = append(head, "qc/quic-go", "qc/TCP", "contract", "")
	fmt.Fprintln(tw, strings.Join(head, "\t")+"\t")
	for _, m := range r.Metrics {
		row := []string{m.Workload, m.Name}
		for _, b := range r.Backends {
			if v, ok := m.Median[b]; ok {
				row = append(row, num(v))
			} else {
				row = append(row, "—")
			}
		}
		row = append(row, ratio(m.RatioQUICGo), ratio(m.RatioTCP))
		verdict := ""
		if m.MeetsContract != nil {
			if *m.MeetsContract {
				verdict = "ok"
			} else {
				verdict = "BELOW"
			}
			if !m.HigherIsBetter && m.ExtraOverQUICGo != nil {
				verdict += fmt.Sprintf(" (%+.1f)", *m.ExtraOverQUICGo)
			}
		}
		row = append(row, m.Contract, verdict)
		fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
	}
	tw.Flush()
	fmt.Fprintln(w, "\nValues are medians over the rounds. qc/quic-go and qc/TCP are the medians of the")
	fmt.Fprintln(w, "per-round ratios (quicconn's sample over the other's, taken moments apart): above 1")
	fmt.Fprintln(w, "is better for rates, below 1 for latency, loss, CPU and idle cost. The contract")
	fmt.Fprintln(w, "column checks qc/quic-go (rates) or quicconn's median minus quic-go's (idle cost).")
}

func (r *report) keyExchange() string {
	var parts []string
	for _, b := range r.Backends {
		parts = append(parts, b+" "+r.KeyExchange[b])
	}
	return strings.Join(parts, ", ")
}

func num(v float64) string {
	switch a := max(v, -v); {
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

func ratio(r *float64) string {
	if r == nil {
		return "—"
	}
	return fmt.Sprintf("%.2f", *r)
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
// before the idle workload takes its baseline.
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
