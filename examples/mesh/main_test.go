package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/quicconn/quicconn/conn"
	qerr "github.com/quicconn/quicconn/errors"
	"github.com/quicconn/quicconn/examples/internal/cli"
	"github.com/quicconn/quicconn/examples/internal/runtest"
)

// bin is the mesh binary, built once by TestMain: the tests run it as a
// user would, as a separate process.
var bin string

func TestMain(m *testing.M) { os.Exit(runtest.Main(m, "mesh", &bin)) }

// dur matches a printed duration.
const dur = `[0-9.]+(?:ns|µs|ms|s)`

// TestRun is the README's command, and the same with -nodes 3: every step
// prints its line, in order, with what each node saw in the steps that
// change the membership.
func TestRun(t *testing.T) {
	for _, tc := range []struct {
		name  string
		args  []string
		nodes int
	}{
		{"default", nil, 5},
		{"nodes 3", []string{"-nodes", "3"}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			r := runtest.Run(t, 60*time.Second, t.TempDir(), bin, tc.args...)
			if r.Code != 0 || r.Stderr != "" {
				t.Fatalf("exit %d, stderr:\n%s\nstdout:\n%s", r.Code, r.Stderr, r.Stdout)
			}
			if took := time.Since(start); took > 30*time.Second {
				t.Errorf("took %v; the run is meant to end within a few seconds", took)
			}
			checkRun(t, r.Stdout, tc.nodes)
		})
	}
}

// checkRun checks the output of a run of n nodes.
func checkRun(t *testing.T, out string, n int) {
	t.Helper()
	h := `[0-9a-f]{8}`
	// The first n nodes, and the n trusted at the end (one admitted, one
	// revoked), have as many connections.
	links := n * (n - 1) / 2
	steps := []string{
		fmt.Sprintf(`^quicconn mesh: %d nodes in one process, each with its own Registration, identity and listener`, n),
		fmt.Sprintf(`^connect +%s  %d connections: every node connected to its %d peers, each peer named by its RemoteIdentity$`, dur, links, n-1),
		fmt.Sprintf(`^gossip +%s  %d rumors, one from each node, reached all %d nodes over message streams`, dur, n, n),
		fmt.Sprintf(`^request +%s  %d requests on bidirectional streams \(MessageWriter, MessageReader\): every peer replied "%d rumors", round trip min %s, median %s, max %s$`, dur, n*(n-1), n, dur, dur, dur),
		fmt.Sprintf(`^datagrams +%s  %d sent, \d+ received, one-way `, dur, 3*n*(n-1)),
		fmt.Sprintf(`^admit +%s  node (%s) joined: the %d running nodes trusted its hash \(TrustHashes, no re-Listen\), it connected to all; admission to first message at most %s$`, dur, h, n, dur),
		fmt.Sprintf(`^revoke +%s  node (%s) untrusted by the other %d nodes \(UntrustHashes\): quicconn closed its %d connections by itself, revocation to disconnect at most (%s)$`, dur, h, n, n, dur),
		fmt.Sprintf(`^refused +%s  node %s connected to %s again: its Start failed \(the peer rejected our certificate, its old session ticket included\)$`, dur, h, h),
		fmt.Sprintf(`^after +%s  rumor %s/2 reached the %d trusted nodes; their %d connections untouched, the revoked node %s got nothing$`, dur, h, n, links, h),
		fmt.Sprintf(`^streams +%s  %d message streams closed, each delivered every message sent on it: \d+ rumors in all`, dur, 2*links),
		fmt.Sprintf(`^shutdown +%s  %d connections closed with code 0$`, dur, links),
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	i := 0
	var admitted, revoked, slowest string
	for _, want := range steps {
		re := regexp.MustCompile(want)
		for ; i < len(lines) && !re.MatchString(lines[i]); i++ {
		}
		if i == len(lines) {
			t.Fatalf("no line matches %s (after the previous step's) in:\n%s", want, out)
		}
		if m := re.FindStringSubmatch(lines[i]); strings.HasPrefix(want, "^admit") {
			admitted = m[1]
		} else if strings.HasPrefix(want, "^revoke") {
			revoked, slowest = m[1], m[2]
		}
	}

	count := func(re string) int { return len(regexp.MustCompile(`(?m)`+re).FindAllString(out, -1)) }
	for _, c := range []struct {
		what string
		re   string
		want int
	}{
		{"listening nodes", `^node ` + h + `  listening on 127\.0\.0\.1:\d+, identity [0-9a-f]{64}$`, n},
		{"nodes that admitted", `^  node ` + h + `  trusted ` + admitted + ` live: connected \+` + dur + `, first message from it \+` + dur + ` \((direct|forwarded by ` + h + `)\)$`, n},
		{"the admitted node", `^  node ` + admitted + `  new: connected to all \d+ \+` + dur + `, first message \+` + dur + `, knew all \d+ rumors`, 1},
		{"revoking sides", `^  node ` + h + `  untrusted ` + revoked + `: connection closed \+` + dur + `, Err: peer certificate no longer trusted \(code 0x12a\)$`, n},
		{"revoked sides", `^  node ` + revoked + `  revoked by ` + h + `: connection closed \+` + dur + `, Err: shutdown by peer \(code 0x12a\): "certificate no longer trusted \(sha256 ` + revoked + `…\)"$`, n},
	} {
		if got := count(c.re); got != c.want {
			t.Errorf("%d lines for the %s, want %d (%s), in:\n%s", got, c.what, c.want, c.re, out)
		}
	}
	if d, err := time.ParseDuration(slowest); err != nil || d > revokeTimeout {
		t.Errorf("revocation to disconnect %q, want at most %v", slowest, revokeTimeout)
	}
}

// TestInProcess runs the whole program in the test's process, so that
// -race watches every goroutine of every node.
func TestInProcess(t *testing.T) {
	var out strings.Builder
	if code := run([]string{"-nodes", "4"}, &out); code != cli.ExitOK {
		t.Fatalf("exit %d, output:\n%s", code, out.String())
	}
	checkRun(t, out.String(), 4)
}

// TestVerbose: -v adds a line per node to every step and quicconn's debug
// records on stderr.
func TestVerbose(t *testing.T) {
	r := runtest.Run(t, 60*time.Second, t.TempDir(), bin, "-v", "-nodes", "3")
	if r.Code != 0 || !strings.Contains(r.Stderr, "level=DEBUG") {
		t.Fatalf("exit %d, stderr:\n%s\nstdout:\n%s", r.Code, r.Stderr, r.Stdout)
	}
	checkRun(t, r.Stdout, 3)
	for _, re := range []string{
		`(?m)^  node [0-9a-f]{8}  dialled \[.*\], accepted \[.*\], all up \+`,
		`(?m)^  node [0-9a-f]{8}  knows 3 rumors, the last \+`,
		`(?m)^  node [0-9a-f]{8}  asked 2 peers: "3 rumors" from each`,
		`(?m)^  node [0-9a-f]{8}  received \d+ heartbeats`,
	} {
		if got := len(regexp.MustCompile(re).FindAllString(r.Stdout, -1)); got != 3 {
			t.Errorf("%d lines match %s, want 3, in:\n%s", got, re, r.Stdout)
		}
	}
}

// TestUsage checks that bad invocations end with one line and status 2.
func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown flag", []string{"-bogus"}, "flag provided but not defined: -bogus"},
		{"not a number", []string{"-nodes", "five"}, `invalid value "five" for flag -nodes`},
		{"too few nodes", []string{"-nodes", "1"}, "-nodes 1: want 2 to 32"},
		{"too many nodes", []string{"-nodes", "33"}, "-nodes 33: want 2 to 32"},
		{"stray argument", []string{"extra"}, "unexpected argument"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runtest.Run(t, 10*time.Second, t.TempDir(), bin, tc.args...)
			line := runtest.OneLine(t, r)
			if r.Code != cli.ExitUsage || !strings.HasPrefix(line, "mesh: ") || !strings.Contains(line, tc.want) {
				t.Errorf("exit %d, stderr %q: want %d and %q", r.Code, line, cli.ExitUsage, tc.want)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	r := runtest.Run(t, 10*time.Second, t.TempDir(), bin, "-help")
	if r.Code != 0 || r.Stderr != "" || !strings.Contains(r.Stdout, "mesh [-nodes N] [-v]") || !strings.Contains(r.Stdout, "-nodes N") || !strings.Contains(r.Stdout, "revoke ") {
		t.Errorf("exit %d, stderr %q, stdout:\n%s", r.Code, r.Stderr, r.Stdout)
	}
}

// TestFailures runs the steps in this process with something broken, and
// checks that the step fails with a line that says what went wrong.
func TestFailures(t *testing.T) {
	for _, tc := range []struct {
		name   string
		before []func(*runner) error // steps that pass
		broken func(*runner)         // then this breaks the mesh
		step   func(*runner) error   // and this step fails
		want   string
	}{
		{
			name:   "a pin missing",
			broken: func(r *runner) { r.first[2].cred.UntrustHashes(r.first[0].id) },
			step:   (*runner).connect,
			want:   "could not connect to",
		},
		{
			name:   "a message lost on a stream",
			before: []func(*runner) error{(*runner).connect, (*runner).gossip},
			broken: func(r *runner) { r.first[0].peer(r.first[1].id).sent.Add(1) }, // counted, never sent
			step:   (*runner).shutdown,
			want:   "a message lost on the stream from ",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMesh(context.Background(), cli.Logger(false))
			defer m.close()
			r := &runner{m: m, p: &printer{out: io.Discard}}
			if err := r.start(3); err != nil {
				t.Fatal(err)
			}
			for _, step := range tc.before {
				if err := step(r); err != nil {
					t.Fatal(err)
				}
			}
			tc.broken(r)
			if err := tc.step(r); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error with %q", err, tc.want)
			}
		})
	}
}

// TestAwait: a wait that is not done in time says what is missing, a
// problem reported meanwhile ends it at once, and a wait that is done
// returns nil.
func TestAwait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newMesh(context.Background(), cli.Logger(false))
		defer m.close()
		start := time.Now()
		err := m.await(revokeTimeout, func() (string, error) { return "node a still connected to the revoked node b", nil })
		if _, ok := errors.AsType[*timeoutError](err); !ok || err.Error() != "node a still connected to the revoked node b after 1s" {
			t.Errorf("got %v", err)
		}
		if took := time.Since(start); took != revokeTimeout {
			t.Errorf("gave up after %v, want %v", took, revokeTimeout)
		}

		m.problem(errors.New("node a: request \"x\""))
		if err := m.await(time.Hour, func() (string, error) { return "never", nil }); err == nil || err.Error() != `node a: request "x"` {
			t.Errorf("with a problem: got %v", err)
		}
		if time.Since(start) != revokeTimeout {
			t.Error("a problem did not end the wait at once")
		}

		m.problems = nil
		if err := m.await(time.Second, func() (string, error) { return "", nil }); err != nil {
			t.Errorf("done: got %v", err)
		}
	})
}

func TestDescribe(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{
			&qerr.ConnectionError{Reason: qerr.ShutdownByPeer, Code: conn.CodeTrustRevoked, Remote: true, Message: "certificate no longer trusted (sha256 " + strings.Repeat("0123abcd", 8) + ")"},
			`shutdown by peer (code 0x12a): "certificate no longer trusted (sha256 0123abcd…)"`,
		},
		{
			&qerr.ConnectionError{Reason: qerr.TrustRevoked, Code: conn.CodeTrustRevoked, Message: "not sent by the peer, not shown"},
			"peer certificate no longer trusted (code 0x12a)",
		},
		{errors.New("plain"), "plain"},
	} {
		if got := describe(tc.err); got != tc.want {
			t.Errorf("describe(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}
