package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// progress reports the bytes written to it: as a progress bar with rate and
// ETA when out is a terminal, else as a plain line every interval (and none
// at all with a zero interval), so that logs and pipes get readable text.
type progress struct {
	bar *progressbar.ProgressBar // terminal mode

	out      io.Writer // plain mode
	verb     string
	total    int64
	done     int64
	start    time.Time
	last     time.Time
	interval time.Duration
}

func newProgress(out *os.File, verb, name string, total int64, interval time.Duration) *progress {
	p := &progress{out: out, verb: verb, total: total, start: time.Now(), interval: interval}
	p.last = p.start
	if term.IsTerminal(int(out.Fd())) {
		p.bar = progressbar.NewOptions64(total,
			progressbar.OptionSetWriter(out),
			progressbar.OptionSetDescription(verb+" "+name),
			progressbar.OptionShowBytes(true),
			progressbar.OptionShowTotalBytes(true),
			progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionFullWidth(),
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(out) }),
		)
	}
	return p
}

// Write counts len(b) bytes; it never fails.
func (p *progress) Write(b []byte) (int, error) {
	p.done += int64(len(b))
	if p.bar != nil {
		p.bar.Add(len(b))
		return len(b), nil
	}
	if now := time.Now(); p.interval > 0 && now.Sub(p.last) >= p.interval {
		p.last = now
		fmt.Fprintln(p.out, p.line(now))
	}
	return len(b), nil
}

// line is the plain progress line: bytes, share, rate and ETA.
func (p *progress) line(now time.Time) string {
	elapsed := now.Sub(p.start)
	rate := float64(p.done) / elapsed.Seconds()
	s := fmt.Sprintf("%s %s of %s", p.verb, size(p.done), size(p.total))
	if p.total > 0 {
		s += fmt.Sprintf(" (%d%%)", p.done*100/p.total)
	}
	if rate > 0 {
		s += fmt.Sprintf(", %s/s", size(int64(rate)))
		eta := time.Duration(float64(p.total-p.done) / rate * float64(time.Second))
		s += fmt.Sprintf(", ETA %v", eta.Round(time.Second))
	}
	return s
}

// finish ends the bar; the caller prints the summary.
func (p *progress) finish() {
	if p.bar != nil {
		p.bar.Finish()
	}
}

// size formats a byte count in binary units.
func size(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
