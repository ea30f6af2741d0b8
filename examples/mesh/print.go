package main

// The output: a timed line per step, indented lines for what each node saw.

import (
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"time"

	qerr "github.com/quicconn/quicconn/errors"
)

// printer writes the run's lines: a step's line, then what each node saw
// in it, indented.
type printer struct {
	out     io.Writer
	verbose bool
	nodes   []string // the lines of the step being printed
}

// step prints a step's line, its name, how long it took and what it
// showed, then the node lines given since the last step.
func (p *printer) step(name string, took time.Duration, format string, args ...any) {
	fmt.Fprintf(p.out, "%-10s %9s  %s\n", name, round(took), fmt.Sprintf(format, args...))
	for _, line := range p.nodes {
		fmt.Fprintf(p.out, "  %s\n", line)
	}
	p.nodes = p.nodes[:0]
}

// node adds a line on what node n saw to the next step's.
func (p *printer) node(n *node, format string, args ...any) {
	p.nodes = append(p.nodes, fmt.Sprintf("node %s  %s", n.name, fmt.Sprintf(format, args...)))
}

// detail is node's line, printed with -v only.
func (p *printer) detail(n *node, format string, args ...any) {
	if p.verbose {
		p.node(n, format, args...)
	}
}

func round(d time.Duration) time.Duration {
	switch {
	case d > time.Second:
		return d.Round(time.Millisecond)
	case d > time.Millisecond:
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}

// spread describes a set of durations by their minimum, median and maximum.
func spread(ds []time.Duration) string {
	if len(ds) == 0 {
		return "(none)"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return fmt.Sprintf("min %v, median %v, max %v", round(s[0]), round(s[len(s)/2]), round(s[len(s)-1]))
}

// plural is n and word, in the plural unless n is 1.
func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// later returns the later of a and b, where a zero time is neither.
func later(a, b time.Time) time.Time {
	if a.IsZero() || b.After(a) {
		return b
	}
	return a
}

// earlier returns the earlier of a and b, where a zero time is neither.
func earlier(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

// longHash is a certificate hash in full, as reason phrases carry it.
var longHash = regexp.MustCompile(`\b([0-9a-f]{8})[0-9a-f]{56}\b`)

// describe says how a connection ended, from its Err: the reason and code,
// and the peer's reason phrase when the peer closed it, with hashes
// shortened as the nodes are named.
func describe(err error) string {
	ce, ok := errors.AsType[*qerr.ConnectionError](err)
	if !ok {
		return fmt.Sprint(err)
	}
	s := fmt.Sprintf("%s (code 0x%x)", ce.Reason, ce.Code)
	if ce.Remote && ce.Message != "" {
		s += fmt.Sprintf(": %q", longHash.ReplaceAllString(ce.Message, "$1…"))
	}
	return s
}
