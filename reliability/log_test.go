package reliability_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
)

type ed25519Key = ed25519.PrivateKey

// discard is a logger that drops everything, so the suite's output stays
// readable.
var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// capture is a slog.Handler that records every record, at every level, with
// its attributes rendered to text.
type capture struct {
	mu      *sync.Mutex
	records *[]captured
	attrs   []slog.Attr
}

type captured struct {
	Level slog.Level
	Msg   string
	Text  string // message and all attributes
}

func newCapture() (*slog.Logger, *capture) {
	c := &capture{mu: new(sync.Mutex), records: new([]captured)}
	return slog.New(c), c
}

func (c *capture) Enabled(context.Context, slog.Level) bool { return true }

func (c *capture) Handle(_ context.Context, r slog.Record) error {
	var sb strings.Builder
	sb.WriteString(r.Message)
	for _, a := range c.attrs {
		fmt.Fprintf(&sb, " %s=%v", a.Key, a.Value)
	}
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&sb, " %s=%+v", a.Key, a.Value.Any())
		return true
	})
	c.mu.Lock()
	*c.records = append(*c.records, captured{r.Level, r.Message, sb.String()})
	c.mu.Unlock()
	return nil
}

func (c *capture) WithAttrs(as []slog.Attr) slog.Handler {
	n := *c
	n.attrs = append(append([]slog.Attr(nil), c.attrs...), as...)
	return &n
}

func (c *capture) WithGroup(string) slog.Handler { return c }

func (c *capture) all() []captured {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]captured(nil), *c.records...)
}

func (c *capture) count(level slog.Level, msgContains string) int {
	n := 0
	for _, r := range c.all() {
		if r.Level == level && strings.Contains(r.Msg, msgContains) {
			n++
		}
	}
	return n
}
