package main

// The output: a timed line per step, indented lines for what each node saw.

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// printer writes the run's lines.
type printer struct {
	out     io.Writer
	verbose bool
}

// step prints a step's line: its name, how long it took, what it showed.
func (p *printer) step(name string, took time.Duration, format string, args ...any) {
	fmt.Fprintf(p.out, "%-10s %9s  %s\n", name, round(took), fmt.Sprintf(format, args...))
}

// node prints what node n saw in the step whose line follows.
func (p *printer) node(n *node, format string, args ...any) {
	fmt.Fprintf(p.out, "  node %s  %s\n", n.name, fmt.Sprintf(format, args...))
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

// trimErr is a connection's error without the prefix every one has.
func trimErr(err error) string {
	return "Err: " + strings.TrimPrefix(err.Error(), "quicconn: connection lost: ")
}
