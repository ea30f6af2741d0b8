// Command perf measures quicconn side by side with raw quic-go and with
// TCP + crypto/tls 1.3, in one run on 127.0.0.1.
//
// It runs each workload over the transports in alternation — every round
// runs every transport once, in a rotated order, so that drift of the
// machine (other processes, frequency scaling) hits all of them — and prints
// the medians over the rounds with the ratios quicconn/quic-go and
// quicconn/TCP+TLS (each the median of the per-round ratios). The workloads
// and flags are listed by -help (usageText below).
//
// Each workload also reports the process's CPU time per operation (per MiB
// for bulk), both sides together: on a busy machine it is steadier than the
// rates, which depend on what else gets the CPUs.
//
// All transports use the same certificates (ECDSA P-256 from
// certverify.GenerateSelfSigned, pinned by hash both ways) and the very TLS
// configs certverify builds (Credential.ClientTLSConfig/ServerTLSConfig),
// so certificate verification costs the same. Those configs leave the key
// exchange to crypto/tls's default, which in Go 1.24+ is the hybrid
// X25519MLKEM768 (about 45 % slower handshakes); this program pins the
// default to X25519 for all of them with the go:debug directive below. Run
// with GODEBUG=tlsmlkem=1 to measure the hybrid default instead. Both QUIC
// sides use the same settings (see settings in backend.go), except in the
// wan workload, which compares each stack's defaults.
//
//go:debug tlsmlkem=0
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/quicconn/quicconn/certverify"
	"github.com/quicconn/quicconn/conn"
	"github.com/quicconn/quicconn/examples/internal/cli"
)

const usageText = `Usage:
  perf [-quick] [-workloads LIST] [-transports LIST] [-rounds N] [-markdown | -json]
  perf -listen ADDR                    serve every workload over quicconn
  perf -connect ADDR [-peer IDENTITY]  run the workloads against a -listen server

Runs the same workloads over raw quic-go, quicconn and TCP + crypto/tls 1.3 on
127.0.0.1, every transport once per round in a rotated order, and prints the
medians over the rounds with the ratios quicconn / quic-go and quicconn / TCP.

Workloads (-workloads takes a comma-separated subset; the default is all but wan):
  bulk         one stream, 256 MiB in 64 KiB writes (MB/s)
  rps          1 KiB request, 1 KiB response, a new stream per request, 1 and
               32 concurrent requesters (requests/s, p50 and p99 latency)
  datagrams    1,100-byte datagrams as fast as they are taken (QUIC only)
  handshakes   full handshakes with mutual authentication, new socket each,
               sequential and 8 concurrent (per second); and, QUIC only,
               handshakes that resume the session of the one before
  idle         500 idle connections, datagrams enabled: heap, goroutines and
               stack per connection and side
  connections  10,000 idle connections to one listener, clients spread over
               -conns-sockets sockets, then a storm of 1,000 simultaneous
               handshakes (QUIC only): cost per connection and side, storm
               time, refusals, and what is left after close
  wan          a 64 MiB transfer over an in-memory link with 50 ms one-way
               delay, 200 Mbit/s and 0.1 % loss, each stack with its own
               defaults (QUIC only; minutes per sample, so not in the default set)

Examples:
  go run ./examples/perf                       # full run: 7 rounds, about 10 minutes
  go run ./examples/perf -quick                # about a minute, smaller sizes
  go run ./examples/perf -markdown             # the table as in the README
  go run ./examples/perf -workloads connections -rounds 1
  go run ./examples/perf -workloads wan -rounds 1
  go run ./examples/perf -workloads rps -cpuprofile cpu.out   # then: go tool pprof cpu.out

Progress goes to stderr: a bar on a terminal, otherwise a line per round. Rates
on a shared machine move with its load: the header shows the load average
before and after, and -rounds trades time for steadier medians.

Between two processes or machines, quicconn only (no ratios):
  go run ./examples/perf -listen 0.0.0.0:4433   # prints its identity
  go run ./examples/perf -connect host:4433 -peer IDENTITY
The server accepts any well-formed client certificate; without -peer the client
accepts any well-formed server certificate. The idle, connections and wan
workloads need both sides in one process and are skipped with -connect, and CPU
per operation then counts the client's side only.

Exit status: 0 success, 1 failure, 2 bad usage.

Flags:
`

// trace (PERF_TRACE=1 in the environment) logs every sample with the
// process's goroutine count and heap, to spot drift between rounds.
var trace = os.Getenv("PERF_TRACE") != ""

// params are the sizes of one run.
type params struct {
	rounds       int
	bulkSize     int64
	bulkDur      time.Duration
	dur          time.Duration
	idleConns    int
	conns        int // connections workload: idle connections
	storm        int // connections workload: simultaneous handshakes
	connsSockets int // connections workload: client sockets per transport
	connsRounds  int // connections workload: rounds it runs in (the first ones)
	wan          wanParams
	only         map[string]bool
	backends     map[string]bool
}

// workloadNames are the valid -workloads values, in table order.
var workloadNames = []string{"bulk", "rps", "datagrams", "handshakes", "idle", "connections", "wan"}

// optIn are the workloads that run only when -workloads names them.
var optIn = map[string]bool{"wan": true}

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// options are the parsed flags.
type options struct {
	p                      params
	quick                  bool
	jsonOut, markdown      bool
	quiet                  bool
	jsonFile               string
	listen, connect, peer  string
	cpuProfile, memProfile string
	workloads, transports  string
}

func run(args []string, stdout, stderr io.Writer) int {
	var o options
	full := params{
		rounds: 7, bulkSize: 256 << 20, dur: 2 * time.Second, idleConns: 500,
		conns: 10000, storm: 1000, connsSockets: 16, connsRounds: 3, wan: defaultWAN,
	}
	var bulkMiB int64
	fs := flag.NewFlagSet("perf", flag.ContinueOnError)
	fs.BoolVar(&o.quick, "quick", false, "finish in about a minute: smaller sizes, shorter durations, 2 rounds (other size flags still apply on top)")
	fs.BoolVar(&o.jsonOut, "json", false, "print the results as JSON on stdout (every sample, medians, ratios)")
	fs.BoolVar(&o.markdown, "markdown", false, "print the table as Markdown, in the README's format")
	fs.StringVar(&o.jsonFile, "json-file", "", "also write the results as JSON to `FILE`")
	fs.BoolVar(&o.quiet, "q", false, "no progress on stderr")
	fs.IntVar(&full.rounds, "rounds", full.rounds, "`N` rounds; each runs every workload once per transport")
	fs.Int64Var(&bulkMiB, "bulk-mib", 256, "`MiB` sent by the bulk workload")
	fs.DurationVar(&full.bulkDur, "bulk-duration", 0, "if set, the bulk workload sends for this `duration` instead of -bulk-mib")
	fs.DurationVar(&full.dur, "duration", full.dur, "length of each timed workload (rps, datagrams, handshakes)")
	fs.IntVar(&full.idleConns, "idle-conns", full.idleConns, "connections of the idle workload")
	fs.IntVar(&full.conns, "conns", full.conns, "idle connections of the connections workload (-quick: 1000)")
	fs.IntVar(&full.storm, "storm", full.storm, "simultaneous handshakes of the connections workload's storm (-quick: 200)")
	fs.IntVar(&full.connsSockets, "conns-sockets", full.connsSockets, "client UDP sockets the connections workload spreads its clients over")
	fs.IntVar(&full.connsRounds, "conns-rounds", full.connsRounds, "the connections workload runs in the first `N` rounds only (it is slow and steady)")
	fs.Int64Var(&full.wan.size, "wan-mib", full.wan.size>>20, "`MiB` sent by the wan workload")
	fs.DurationVar(&full.wan.link.Delay, "wan-delay", full.wan.link.Delay, "one-way delay of the wan link")
	fs.Float64Var(&full.wan.mbits, "wan-mbits", full.wan.mbits, "bandwidth of the wan link in Mbit/s")
	fs.Float64Var(&full.wan.link.Loss, "wan-loss", full.wan.link.Loss, "packet loss of the wan link, 0 to 1")
	fs.StringVar(&o.workloads, "workloads", "", "run the workloads of this comma-separated `LIST`, of "+strings.Join(workloadNames, ",")+" (default: all but wan)")
	fs.StringVar(&o.transports, "transports", "", "run over the transports of this comma-separated `LIST`, of quic-go,quicconn,TCP+TLS (ratios need quicconn and the other)")
	fs.StringVar(&o.listen, "listen", "", "serve every workload over quicconn on this UDP `ADDR` and wait")
	fs.StringVar(&o.connect, "connect", "", "run the workloads over quicconn against a -listen server at `ADDR`")
	fs.StringVar(&o.peer, "peer", "", "with -connect: the `IDENTITY` (certificate hash) the server printed")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the run to `FILE` (go tool pprof FILE)")
	fs.StringVar(&o.memProfile, "memprofile", "", "write heap profiles, taken while the idle and connections workloads hold their connections, to `FILE`.<workload>.<transport>")
	if code, done := cli.ParseFlags(fs, args, usageText); done {
		return code
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	full.bulkSize = bulkMiB << 20
	full.wan.size <<= 20
	o.p = full
	if o.quick {
		o.p = quickParams(full, set)
	}
	if err := o.check(); err != nil {
		return cli.Fail("perf", err)
	}
	if o.listen != "" {
		if err := serve(stdout, o.listen); err != nil {
			return cli.Fail("perf", err)
		}
		return cli.ExitOK
	}
	if err := o.measure(stdout, stderr); err != nil {
		return cli.Fail("perf", err)
	}
	return cli.ExitOK
}

// quickParams are the sizes of -quick, except where a flag was given.
func quickParams(full params, set map[string]bool) params {
	q := params{
		rounds: 2, bulkSize: 32 << 20, dur: 400 * time.Millisecond, idleConns: 200,
		conns: 1000, storm: 200, connsSockets: 4, connsRounds: 1, wan: quickWAN,
	}
	for name, keep := range map[string]func(){
		"rounds":        func() { q.rounds = full.rounds },
		"bulk-mib":      func() { q.bulkSize = full.bulkSize },
		"bulk-duration": func() { q.bulkDur = full.bulkDur },
		"duration":      func() { q.dur = full.dur },
		"idle-conns":    func() { q.idleConns = full.idleConns },
		"conns":         func() { q.conns = full.conns },
		"storm":         func() { q.storm = full.storm },
		"conns-sockets": func() { q.connsSockets = full.connsSockets },
		"conns-rounds":  func() { q.connsRounds = full.connsRounds },
		"wan-mib":       func() { q.wan.size = full.wan.size },
		"wan-delay":     func() { q.wan.link.Delay = full.wan.link.Delay },
		"wan-mbits":     func() { q.wan.mbits = full.wan.mbits },
		"wan-loss":      func() { q.wan.link.Loss = full.wan.link.Loss },
	} {
		if set[name] {
			keep()
		}
	}
	return q
}

// check parses -workloads and -transports and rejects values that cannot
// work, as usage errors.
func (o *options) check() error {
	p := &o.p
	var err error
	if p.only, err = parseList("-workloads", o.workloads, workloadNames); err != nil {
		return err
	}
	if p.backends, err = parseList("-transports", o.transports, []string{qgo, qc, tcp}); err != nil {
		return err
	}
	for _, c := range []struct {
		name string
		bad  bool
		want string
	}{
		{"-rounds", p.rounds < 1, "at least 1"},
		{"-bulk-mib", p.bulkSize <= 0 && p.bulkDur == 0, "positive"},
		{"-bulk-duration", p.bulkDur < 0, "positive or 0"},
		{"-duration", p.dur <= 0, "positive"},
		{"-idle-conns", p.idleConns < 1, "at least 1"},
		{"-conns", p.conns < 1, "at least 1"},
		{"-storm", p.storm < 1, "at least 1"},
		{"-conns-sockets", p.connsSockets < 1 || p.connsSockets > p.conns, "between 1 and -conns"},
		{"-conns-rounds", p.connsRounds < 1, "at least 1"},
		{"-wan-mib", p.wan.size <= 0, "positive"},
		{"-wan-delay", p.wan.link.Delay < 0, "positive or 0"},
		{"-wan-mbits", !(p.wan.mbits > 0), "positive"},
		{"-wan-loss", !(p.wan.link.Loss >= 0 && p.wan.link.Loss < 1), "in [0, 1)"},
	} {
		if c.bad {
			return cli.Usagef("%s must be %s", c.name, c.want)
		}
	}
	switch {
	case o.jsonOut && o.markdown:
		return cli.Usagef("-json and -markdown are two formats of the same table: pick one")
	case o.listen != "" && o.connect != "":
		return cli.Usagef("-listen and -connect are the two halves: run them as two processes (see -help)")
	case o.peer != "" && o.connect == "":
		return cli.Usagef("-peer needs -connect")
	case o.connect != "" && o.transports != "":
		return cli.Usagef("-connect measures quicconn only: -transports does not apply")
	case o.listen != "" && (o.workloads != "" || o.transports != "" || o.cpuProfile != "" || o.memProfile != ""):
		return cli.Usagef("-listen serves every workload: -workloads, -transports and the profiles do not apply")
	}
	if o.peer != "" {
		if _, err := certverify.ParseCertHash(o.peer); err != nil {
			return cli.Usagef("-peer %q is not a certificate identity (64 hex digits, as the -listen server printed)", o.peer)
		}
	}
	return nil
}

// parseList parses a comma-separated flag value into a set of valid names;
// "" is nil, meaning the default.
func parseList(flagName, v string, valid []string) (map[string]bool, error) {
	if v == "" {
		return nil, nil
	}
	set := map[string]bool{}
	for name := range strings.SplitSeq(v, ",") {
		name = strings.TrimSpace(name)
		if !slices.Contains(valid, name) {
			return nil, cli.Usagef("unknown name %q in %s; valid: %s", name, flagName, strings.Join(valid, ", "))
		}
		set[name] = true
	}
	return set, nil
}

// measure runs the workloads and prints the results.
func (o *options) measure(stdout, stderr io.Writer) (err error) {
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return fmt.Errorf("-cpuprofile: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return fmt.Errorf("-cpuprofile: %w", err)
		}
		defer func() {
			pprof.StopCPUProfile()
			if cerr := f.Close(); err == nil && cerr != nil {
				err = fmt.Errorf("-cpuprofile: %w", cerr)
			}
		}()
	}
	if o.memProfile != "" {
		// Every allocation sampled, so that the per-connection figures of
		// the profile are exact; it slows the run down.
		runtime.MemProfileRate = 1
		heapProfile = func(workload, backend string) error {
			name := fmt.Sprintf("%s.%s.%s", o.memProfile, workload, strings.ReplaceAll(backend, "+", "-"))
			f, err := os.Create(name)
			if err != nil {
				return fmt.Errorf("-memprofile: %w", err)
			}
			if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
				f.Close()
				return fmt.Errorf("-memprofile: %w", err)
			}
			return f.Close()
		}
	}
	var prog progress = nopProgress{}
	if !o.quiet {
		if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			prog = &barProgress{w: stderr}
		} else {
			prog = &lineProgress{w: stderr}
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	rep, err := runRounds(ctx, o.p, o.connect, o.peer, prog)
	if err != nil {
		if errors.Is(err, context.Canceled) && ctx.Err() != nil {
			return errors.New("interrupted")
		}
		return err
	}
	if o.jsonFile != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(o.jsonFile, append(b, '\n'), 0o644); err != nil {
			return fmt.Errorf("-json-file: %w", err)
		}
	}
	switch {
	case o.jsonOut:
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	case o.markdown:
		rep.markdown(stdout)
	default:
		rep.print(stdout)
	}
	return nil
}

// serve is -listen: a quicconn server for every workload, until interrupted.
func serve(out io.Writer, addr string) error {
	cred, err := certverify.GenerateSelfSigned([]string{"perf-server"}, nil)
	if err != nil {
		return err
	}
	// Clients make a fresh certificate per run, so there is nothing to pin:
	// a benchmark endpoint accepts any well-formed one. Said once here
	// rather than per handshake, which would flood the handshake rows.
	cred.AcceptUnpinned = true
	cred.Logger = slog.New(slog.DiscardHandler)
	fmt.Fprintln(out, "perf: accepting any well-formed client certificate (AcceptUnpinned)")
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
	fmt.Fprintf(out, "perf: serving quicconn on %s\nperf: identity %s\nperf: run: go run ./examples/perf -connect %s -peer %s\n",
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
