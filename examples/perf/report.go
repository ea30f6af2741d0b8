package main

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
)

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
	// MeetsContract is the verdict on the values as the table prints them
	// (ratios to 3 decimals), so that it never contradicts them.
	MeetsContract *bool `json:"meets_contract,omitempty"`

	contract contract
	count    bool
}

type report struct {
	GoVersion   string            `json:"go_version"`
	GOMAXPROCS  int               `json:"gomaxprocs"`
	Rounds      int               `json:"rounds"`
	BulkBytes   int64             `json:"bulk_bytes,omitempty"`
	BulkDur     string            `json:"bulk_duration,omitempty"`
	Duration    string            `json:"duration"`
	IdleConns   int               `json:"idle_conns"`
	Conns       int               `json:"conns"`
	Storm       int               `json:"storm"`
	ConnsSocks  int               `json:"conns_sockets"`
	WAN         string            `json:"wan"`
	KeyExchange map[string]string `json:"key_exchange"`
	LoadBefore  string            `json:"loadavg_before"`
	LoadAfter   string            `json:"loadavg_after"`
	Elapsed     string            `json:"elapsed"`
	Backends    []string          `json:"backends"`
	Metrics     []*metric         `json:"metrics"`
}

// sameAsQUICGo is quicconn's key exchange: it does not expose its TLS state,
// and runs crypto/tls with the same config and the same process default as
// quic-go here.
const sameAsQUICGo = "as quic-go (same config, same process default)"

func (r *report) print(w io.Writer) {
	fmt.Fprintf(w, "%s, GOMAXPROCS=%d, medians over %s; key exchange: %s\n",
		r.GoVersion, r.GOMAXPROCS, r.roundsText(), r.keyExchangeList())
	fmt.Fprintf(w, "load average before: %s, after: %s; elapsed %s\n\n", r.LoadBefore, r.LoadAfter, r.Elapsed)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := []string{"workload", "metric"}
	head = append(head, r.Backends...)
	head = append(head, "qc/quic-go", "qc/TCP", "contract", "")
	fmt.Fprintln(tw, strings.Join(head, "\t")+"\t")
	for _, m := range r.Metrics {
		row := append([]string{m.Workload, m.Name}, r.values(m)...)
		row = append(row, ratio(m.RatioQUICGo), ratio(m.RatioTCP), m.Contract, m.verdict(strings.ToUpper(m.contract.failWord())))
		fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
	}
	tw.Flush()
	fmt.Fprintln(w, "\nValues are medians over the rounds. qc/quic-go and qc/TCP are the medians of the")
	fmt.Fprintln(w, "per-round ratios (quicconn's sample over the other's, taken moments apart): above 1")
	fmt.Fprintln(w, "is better for rates, below 1 for latency, loss, CPU and cost. The contract column")
	fmt.Fprintln(w, "checks qc/quic-go (rates), quicconn's median minus quic-go's (cost per connection,")
	fmt.Fprintln(w, "shown after the verdict) or quicconn's own value (= 0), as printed.")
}

// markdown prints the table as the README has it, and the line under it.
func (r *report) markdown(w io.Writer) {
	head := []string{"workload", "metric"}
	align := []string{"---", "---"}
	for _, b := range r.Backends {
		head = append(head, mdName(b))
		align = append(align, "---:")
	}
	for _, b := range r.Backends {
		if (b == qgo || b == tcp) && r.has(qc) {
			head = append(head, "quicconn / "+mdName(b))
			align = append(align, "---:")
		}
	}
	head = append(head, "contract")
	align = append(align, "---")
	fmt.Fprintf(w, "| %s |\n| %s |\n", strings.Join(head, " | "), strings.Join(align, " | "))
	for _, m := range r.Metrics {
		row := append([]string{m.Workload, m.Name}, r.values(m)...)
		for _, b := range r.Backends {
			switch {
			case !r.has(qc) || b == qc:
			case b == qgo:
				row = append(row, ratio(m.RatioQUICGo))
			case b == tcp:
				row = append(row, ratio(m.RatioTCP))
			}
		}
		c := m.Contract
		if v := m.verdict("**" + m.contract.failWord() + "**"); v != "" {
			c += " " + v
		}
		row = append(row, c)
		fmt.Fprintf(w, "| %s |\n", strings.Join(row, " | "))
	}
	fmt.Fprintf(w, "\n%s, GOMAXPROCS=%d, %s, key exchange %s; load average %s before and %s after; run time %s.\n",
		r.GoVersion, r.GOMAXPROCS, r.roundsText(), r.keyExchangeShort(), firstField(r.LoadBefore), firstField(r.LoadAfter), r.Elapsed)
}

// roundsText is "7 rounds", with the workloads that ran in fewer.
func (r *report) roundsText() string {
	s := fmt.Sprintf("%d rounds", r.Rounds)
	seen := map[string]bool{}
	var fewer []string
	for _, m := range r.Metrics {
		n := 0
		for _, v := range m.Samples {
			n = max(n, len(v))
		}
		if n > 0 && n < r.Rounds && !seen[m.Workload] {
			seen[m.Workload] = true
			fewer = append(fewer, fmt.Sprintf("%s: %d", m.Workload, n))
		}
	}
	if len(fewer) > 0 {
		s += " (" + strings.Join(fewer, ", ") + ")"
	}
	return s
}

func mdName(b string) string {
	if b == tcp {
		return "TCP + TLS"
	}
	return b
}

func (r *report) has(b string) bool {
	for _, x := range r.Backends {
		if x == b {
			return true
		}
	}
	return false
}

// values are m's medians in the order of the backends, "—" where a backend
// has none.
func (r *report) values(m *metric) []string {
	var out []string
	for _, b := range r.Backends {
		if v, ok := m.Median[b]; ok {
			out = append(out, num(v))
		} else {
			out = append(out, "—")
		}
	}
	return out
}

// verdict is "ok" or fail, followed for a cost contract by quicconn's
// extra over quic-go; "" without a contract.
func (m *metric) verdict(fail string) string {
	if m.MeetsContract == nil {
		return ""
	}
	v := fail
	if *m.MeetsContract {
		v = "ok"
	}
	if m.contract.kind == extraAtMost && m.ExtraOverQUICGo != nil {
		v += " (" + extra(*m.ExtraOverQUICGo) + ")"
	}
	return v
}

func (r *report) keyExchangeList() string {
	var parts []string
	for _, b := range r.Backends {
		parts = append(parts, b+" "+r.KeyExchange[b])
	}
	return strings.Join(parts, ", ")
}

// keyExchangeShort is "X25519 on all three" when every transport
// negotiated the same, and the list otherwise.
func (r *report) keyExchangeShort() string {
	kx := ""
	for _, b := range r.Backends {
		k := r.KeyExchange[b]
		if k == sameAsQUICGo && r.has(qgo) {
			k = r.KeyExchange[qgo]
		}
		if k == sameAsQUICGo || kx != "" && k != kx {
			return r.keyExchangeList()
		}
		kx = k
	}
	switch len(r.Backends) {
	case 1:
		return kx
	case 2:
		return kx + " on both"
	case 3:
		return kx + " on all three"
	}
	return kx + " on all"
}

func firstField(s string) string {
	if f := strings.Fields(s); len(f) > 0 {
		return f[0]
	}
	return s
}

// num formats a value with three significant digits or more.
func num(v float64) string {
	switch a := math.Abs(v); {
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}

// ratio formats a ratio with 3 decimals: enough that a ratio the contract
// refuses never prints as its limit.
func ratio(r *float64) string {
	if r == nil {
		return "—"
	}
	return strconv.FormatFloat(*r, 'f', 3, 64)
}

// extra formats quicconn's median minus quic-go's, signed, with the
// precision of the values themselves (num), so that a difference the
// values show is never rounded away.
func extra(x float64) string {
	s := num(x)
	if x >= 0 && !strings.HasPrefix(s, "-") {
		s = "+" + s
	}
	return s
}

// shown is the value a formatted figure stands for, so that verdicts are
// taken on what the reader sees.
func shown(s string) float64 {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return math.NaN()
	}
	return v
}
