// Package runtest runs the example programs as a user would, for their tests:
// it builds a binary once, runs it with a timeout, and reads its output line
// by line while it runs.
package runtest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// Main is the TestMain of an example's tests: it builds the example called
// name once, stores the binary's path in *bin, runs the tests, removes the
// binary and checks that no goroutine was left behind. It returns the exit
// code for os.Exit.
func Main(m *testing.M, name string, bin *string) int {
	b, cleanup, err := Build(name)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	*bin = b
	code := m.Run()
	cleanup()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	return code
}

// Build compiles the main package in the current directory into a new
// temporary directory and returns the binary and a function that removes it.
// It is meant for TestMain.
func Build(name string) (bin string, cleanup func(), err error) {
	dir, err := os.MkdirTemp("", "quicconn-example-")
	if err != nil {
		return "", nil, err
	}
	bin = filepath.Join(dir, name)
	if filepath.Separator == '\\' {
		bin += ".exe"
	}
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, func() { os.RemoveAll(dir) }, nil
}

// Result is how a finished run ended.
type Result struct {
	Code           int
	Stdout, Stderr string
}

// Run runs bin with args in dir and waits at most timeout for it to exit.
func Run(t testing.TB, timeout time.Duration, dir, bin string, args ...string) Result {
	t.Helper()
	p := Start(t, dir, bin, args...)
	return p.Wait(t, timeout)
}

// Proc is a running program whose stdout is read line by line.
type Proc struct {
	cmd    *exec.Cmd
	cancel context.CancelFunc
	stderr lockedBuffer
	done   chan struct{} // closed when stdout is drained

	mu    sync.Mutex
	lines []string
	more  chan struct{} // closed and replaced on every new line
}

// Start starts bin with args in dir. The program is killed when the test
// ends if it is still running.
func Start(t testing.TB, dir, bin string, args ...string) *Proc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p := &Proc{cancel: cancel, done: make(chan struct{}), more: make(chan struct{})}
	p.cmd = exec.CommandContext(ctx, bin, args...)
	p.cmd.Dir = dir
	p.cmd.Stderr = &p.stderr
	p.cmd.WaitDelay = 5 * time.Second
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			close(p.more)
			p.more = make(chan struct{})
			p.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-p.done
		p.cmd.Wait()
	})
	return p
}

// WaitLine waits at most timeout for a line of stdout that starts with
// prefix and returns the rest of it.
func (p *Proc) WaitLine(t testing.TB, prefix string, timeout time.Duration) string {
	t.Helper()
	deadline := time.After(timeout)
	for i := 0; ; {
		p.mu.Lock()
		for ; i < len(p.lines); i++ {
			if rest, ok := strings.CutPrefix(p.lines[i], prefix); ok {
				p.mu.Unlock()
				return rest
			}
		}
		more := p.more
		p.mu.Unlock()
		select {
		case <-more:
		case <-p.done:
			p.mu.Lock()
			n := len(p.lines)
			p.mu.Unlock()
			if i == n {
				t.Fatalf("%s exited without printing %q; stdout:\n%s\nstderr:\n%s", p.cmd.Path, prefix, p.Stdout(), p.stderr.String())
			}
		case <-deadline:
			t.Fatalf("%s printed no line %q within %v; stdout so far:\n%s", p.cmd.Path, prefix, timeout, p.Stdout())
		}
	}
}

// Stdout returns what the program has printed so far.
func (p *Proc) Stdout() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n")
}

// Interrupt sends os.Interrupt to the program.
func (p *Proc) Interrupt(t testing.TB) {
	t.Helper()
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
}

// Wait waits at most timeout for the program to exit; after that it kills
// it and fails the test.
func (p *Proc) Wait(t testing.TB, timeout time.Duration) Result {
	t.Helper()
	timer := time.AfterFunc(timeout, p.cancel)
	defer timer.Stop()
	<-p.done
	err := p.cmd.Wait()
	if !timer.Stop() {
		t.Fatalf("%s did not exit within %v; stdout:\n%s\nstderr:\n%s", p.cmd.Path, timeout, p.Stdout(), p.stderr.String())
	}
	r := Result{Stdout: p.Stdout(), Stderr: p.stderr.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.Code = ee.ExitCode()
	default:
		t.Fatalf("%s: %v", p.cmd.Path, err)
	}
	return r
}

// OneLine checks that a failed run printed exactly one line on stderr, and no
// panic, goroutine dump or log record, and returns that line.
func OneLine(t testing.TB, r Result) string {
	t.Helper()
	all := r.Stdout + "\n" + r.Stderr
	for _, bad := range []string{"goroutine ", "panic", "level=", "\tat "} {
		if strings.Contains(all, bad) {
			t.Errorf("output contains %q:\nstdout:\n%s\nstderr:\n%s", bad, r.Stdout, r.Stderr)
		}
	}
	lines := strings.Split(strings.TrimSuffix(r.Stderr, "\n"), "\n")
	if len(lines) != 1 || lines[0] == "" {
		t.Errorf("want one line on stderr, got %d:\n%s", len(lines), r.Stderr)
	}
	return lines[0]
}

// lockedBuffer is a bytes.Buffer that the program's stderr copier and the
// test may use at once.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
