package main

import (
	"net"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/quicconn/quicconn/examples/internal/runtest"
)

// bin is the echo binary, built once by TestMain: the tests run it as a user
// would, as a separate process.
var bin string

func TestMain(m *testing.M) { os.Exit(runtest.Main(m, "echo", &bin)) }

var hashRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// TestDemo is the README's command: listener and client in one process.
func TestDemo(t *testing.T) {
	r := runtest.Run(t, 30*time.Second, t.TempDir(), bin)
	if r.Code != 0 || r.Stderr != "" {
		t.Fatalf("exit %d, stderr:\n%s\nstdout:\n%s", r.Code, r.Stderr, r.Stdout)
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^listening on 127\.0\.0\.1:\d+$`),
		regexp.MustCompile(`(?m)^server identity [0-9a-f]{64}$`),
		regexp.MustCompile(`(?m)^client identity [0-9a-f]{64}$`),
		regexp.MustCompile(`(?m)^handshake +\S+ +connected to 127\.0\.0\.1:\d+, ALPN "quicconn-echo/1"$`),
		regexp.MustCompile(`(?m)^identity +\S+ +server [0-9a-f]{64} \(pinned\)$`),
		regexp.MustCompile(`(?m)^stream +\S+ +echoed 38 bytes on stream \d+: "hello over a bidirectional QUIC stream"$`),
		regexp.MustCompile(`(?m)^messages +\S+ +sent 3 messages, server replied "got 3: one, two, three"$`),
		regexp.MustCompile(`(?m)^datagrams +\S+ +sent 3, \d echoed back \(largest payload now \d+ bytes\)$`),
		regexp.MustCompile(`(?m)^shutdown +\S+ +closed with code 0, state ShutdownComplete$`),
		regexp.MustCompile(`(?m)^server +verified client [0-9a-f]{64}, echoed 1 stream\(s\), read 3 message\(s\)`),
		regexp.MustCompile(`(?m)^stats client: rtt .* streams 2 opened/1 accepted, datagrams 3 sent/`),
		regexp.MustCompile(`(?m)^stats server: rtt .* streams 1 opened/2 accepted, datagrams \d sent/`),
	} {
		if !want.MatchString(r.Stdout) {
			t.Errorf("no line matches %v in:\n%s", want, r.Stdout)
		}
	}
}

// makeCert makes a stable client certificate in dir and returns its hash.
func makeCert(t *testing.T, dir, prefix string) string {
	t.Helper()
	r := runtest.Run(t, 10*time.Second, dir, bin, "-gen-cert", prefix)
	if r.Code != 0 {
		t.Fatalf("-gen-cert: exit %d: %s", r.Code, r.Stderr)
	}
	for _, line := range strings.Split(r.Stdout, "\n") {
		if h, ok := strings.CutPrefix(line, "identity "); ok && hashRE.MatchString(h) {
			return h
		}
	}
	t.Fatalf("-gen-cert printed no identity:\n%s", r.Stdout)
	return ""
}

// TestTwoProcesses runs the listener and the client as two processes, the
// way -help describes, and checks that untrusted peers are refused on both
// sides with one clear line while the listener goes on waiting for a
// trusted client.
func TestTwoProcesses(t *testing.T) {
	dir := t.TempDir()
	clientHash := makeCert(t, dir, "client")
	otherHash := makeCert(t, dir, "other")

	ln := runtest.Start(t, dir, bin, "-listen", "127.0.0.1:0", "-trust", clientHash)
	addr := ln.WaitLine(t, "listening on ", 10*time.Second)
	serverHash := ln.WaitLine(t, "server identity ", 10*time.Second)
	if !hashRE.MatchString(serverHash) {
		t.Fatalf("server identity %q", serverHash)
	}

	t.Run("client does not trust the server", func(t *testing.T) {
		r := runtest.Run(t, 20*time.Second, dir, bin, "-connect", addr, "-trust", otherHash,
			"-cert", "client-cert.pem", "-key", "client-key.pem")
		line := runtest.OneLine(t, r)
		if r.Code != 1 || !strings.Contains(line, "certificate") || !strings.Contains(line, serverHash) {
			t.Errorf("exit %d, stderr %q: want 1 and a line about the server's certificate %s", r.Code, line, serverHash)
		}
	})
	t.Run("server does not trust the client", func(t *testing.T) {
		r := runtest.Run(t, 20*time.Second, dir, bin, "-connect", addr, "-trust", serverHash,
			"-cert", "other-cert.pem", "-key", "other-key.pem")
		line := runtest.OneLine(t, r)
		if r.Code != 1 || !strings.Contains(line, "rejected this program's certificate (identity "+otherHash) {
			t.Errorf("exit %d, stderr %q: want 1 and a line about our certificate %s", r.Code, line, otherHash)
		}
		ln.WaitLine(t, "client 127.0.0.1:", 10*time.Second) // the listener logs the rejection
	})
	t.Run("trusted", func(t *testing.T) {
		r := runtest.Run(t, 20*time.Second, dir, bin, "-connect", addr, "-trust", serverHash,
			"-cert", "client-cert.pem", "-key", "client-key.pem")
		if r.Code != 0 || r.Stderr != "" {
			t.Fatalf("client: exit %d, stderr:\n%s\nstdout:\n%s", r.Code, r.Stderr, r.Stdout)
		}
		for _, want := range []string{"client identity " + clientHash, "server " + serverHash + " (pinned)", `ALPN "quicconn-echo/1"`, "stats client: "} {
			if !strings.Contains(r.Stdout, want) {
				t.Errorf("client output lacks %q:\n%s", want, r.Stdout)
			}
		}
	})
	lr := ln.Wait(t, 20*time.Second)
	if lr.Code != 0 || lr.Stderr != "" {
		t.Fatalf("listener: exit %d, stderr:\n%s\nstdout:\n%s", lr.Code, lr.Stderr, lr.Stdout)
	}
	for _, want := range []string{
		"handshake failed: peer certificate rejected: certificate hash not trusted (peer identity " + otherHash,
		"(" + clientHash + "): echoed 1 stream(s), read 3 message(s), echoed 3 datagram(s)",
		"stats server: ",
	} {
		if !strings.Contains(lr.Stdout, want) {
			t.Errorf("listener output lacks %q:\n%s", want, lr.Stdout)
		}
	}
}

// TestUnreachable connects to a UDP port nobody listens on.
func TestUnreachable(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	start := time.Now()
	r := runtest.Run(t, 20*time.Second, t.TempDir(), bin, "-connect", addr, "-trust", strings.Repeat("ab", 32), "-timeout", "500ms")
	line := runtest.OneLine(t, r)
	if r.Code != 1 || !strings.Contains(line, "no QUIC handshake with "+addr) {
		t.Errorf("exit %d, stderr %q: want 1 and a line saying no handshake with %s", r.Code, line, addr)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("took %v with -timeout 500ms", took)
	}
}

// TestUsage checks that bad invocations end with one line and status 2.
func TestUsage(t *testing.T) {
	hash := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown flag", []string{"-bogus"}, "flag provided but not defined: -bogus"},
		{"both halves", []string{"-listen", ":0", "-connect", "127.0.0.1:1", "-trust", hash}, "two processes"},
		{"listener without trust", []string{"-listen", "127.0.0.1:0"}, "no -trust hash"},
		{"client without trust", []string{"-connect", "127.0.0.1:1"}, "no -trust hash"},
		{"bad hash", []string{"-connect", "127.0.0.1:1", "-trust", "abc"}, "not a certificate hash"},
		{"no port", []string{"-connect", "127.0.0.1", "-trust", hash}, "missing port"},
		{"cert without key", []string{"-connect", "127.0.0.1:1", "-trust", hash, "-cert", "c.pem"}, "-cert and -key go together"},
		{"trust without a half", []string{"-trust", hash}, "need -listen or -connect"},
		{"stray argument", []string{"extra"}, "unexpected argument"},
		{"bad timeout", []string{"-timeout", "-1s"}, "-timeout must be positive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runtest.Run(t, 10*time.Second, t.TempDir(), bin, tc.args...)
			line := runtest.OneLine(t, r)
			if r.Code != 2 || !strings.HasPrefix(line, "echo: ") || !strings.Contains(line, tc.want) {
				t.Errorf("exit %d, stderr %q: want 2 and %q", r.Code, line, tc.want)
			}
		})
	}
}

// TestBadKeyPair: -cert/-key files that do not load are a plain failure.
func TestBadKeyPair(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(dir+"/c.pem", []byte("not PEM"), 0o600)
	r := runtest.Run(t, 10*time.Second, dir, bin, "-connect", "127.0.0.1:1", "-trust", strings.Repeat("ab", 32), "-cert", "c.pem", "-key", "c.pem")
	line := runtest.OneLine(t, r)
	if r.Code != 1 || !strings.Contains(line, "loading -cert c.pem") {
		t.Errorf("exit %d, stderr %q", r.Code, line)
	}
}

func TestHelp(t *testing.T) {
	r := runtest.Run(t, 10*time.Second, t.TempDir(), bin, "-help")
	if r.Code != 0 || r.Stderr != "" || !strings.Contains(r.Stdout, "-gen-cert PREFIX") || !strings.Contains(r.Stdout, "-trust HASH") {
		t.Errorf("exit %d, stderr %q, stdout:\n%s", r.Code, r.Stderr, r.Stdout)
	}
}

// TestVerbose: -v adds quicconn's debug records on stderr and changes nothing
// else.
func TestVerbose(t *testing.T) {
	r := runtest.Run(t, 30*time.Second, t.TempDir(), bin, "-v")
	if r.Code != 0 || !strings.Contains(r.Stderr, "level=DEBUG") || !strings.Contains(r.Stdout, "stats client: ") {
		t.Errorf("exit %d, stderr:\n%s\nstdout:\n%s", r.Code, r.Stderr, r.Stdout)
	}
}
