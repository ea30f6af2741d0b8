package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/quicconn/quicconn/conntest"
	"github.com/quicconn/quicconn/examples/internal/runtest"
	"github.com/quicconn/quicconn/stream"
)

// bin is the transfer binary, built once by TestMain: the tests run it as a
// user would, as separate processes.
var bin string

func TestMain(m *testing.M) { os.Exit(runtest.Main(m, "transfer", &bin)) }

// setup is a working directory with a sender key pair, a 3 MiB random file
// and an empty inbox.
type setup struct {
	dir, inbox string
	senderHash string
	data       []byte
}

func newSetup(t *testing.T) *setup {
	t.Helper()
	s := &setup{dir: t.TempDir()}
	s.inbox = filepath.Join(s.dir, "inbox")
	if err := os.Mkdir(s.inbox, 0o755); err != nil {
		t.Fatal(err)
	}
	s.data = make([]byte, 3<<20)
	rand.Read(s.data)
	if err := os.WriteFile(filepath.Join(s.dir, "data.bin"), s.data, 0o644); err != nil {
		t.Fatal(err)
	}
	r := runtest.Run(t, 10*time.Second, s.dir, bin, "-gen-cert", "sender")
	if r.Code != 0 {
		t.Fatalf("-gen-cert: exit %d: %s", r.Code, r.Stderr)
	}
	for _, line := range strings.Split(r.Stdout, "\n") {
		if h, ok := strings.CutPrefix(line, "identity "); ok {
			s.senderHash = h
		}
	}
	return s
}

// receiver starts a receiver into the inbox and returns it with its address
// and identity.
func (s *setup) receiver(t *testing.T, args ...string) (p *runtest.Proc, addr, hash string) {
	t.Helper()
	args = append([]string{"-receive", "inbox", "-listen", "127.0.0.1:0", "-trust", s.senderHash}, args...)
	p = runtest.Start(t, s.dir, bin, args...)
	addr = p.WaitLine(t, "listening on ", 10*time.Second)
	hash = p.WaitLine(t, "receiver identity ", 10*time.Second)
	return p, addr, hash
}

func (s *setup) sendArgs(addr, hash string, args ...string) []string {
	return append([]string{"-send", "data.bin", "-connect", addr, "-trust", hash, "-cert", "sender-cert.pem", "-key", "sender-key.pem"}, args...)
}

// inboxNames lists the inbox, temporary files included.
func (s *setup) inboxNames(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(s.inbox)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestSendReceive(t *testing.T) {
	s := newSetup(t)
	recv, addr, hash := s.receiver(t)
	r := runtest.Run(t, 30*time.Second, s.dir, bin, s.sendArgs(addr, hash, "-name", "copy.bin")...)
	if r.Code != 0 || r.Stderr != "" {
		t.Fatalf("sender: exit %d, stderr:\n%s\nstdout:\n%s", r.Code, r.Stderr, r.Stdout)
	}
	rr := recv.Wait(t, 20*time.Second)
	if rr.Code != 0 || rr.Stderr != "" {
		t.Fatalf("receiver: exit %d, stderr:\n%s\nstdout:\n%s", rr.Code, rr.Stderr, rr.Stdout)
	}
	sum := fmt.Sprintf("%x", sha256.Sum256(s.data))
	if want := "receiver verified sha256 " + sum; !strings.Contains(r.Stdout, want) {
		t.Errorf("sender output lacks %q:\n%s", want, r.Stdout)
	}
	if want := fmt.Sprintf("received copy.bin (%d bytes) sha256 %s", len(s.data), sum); !strings.Contains(rr.Stdout, want) {
		t.Errorf("receiver output lacks %q:\n%s", want, rr.Stdout)
	}
	got, err := os.ReadFile(filepath.Join(s.inbox, "copy.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, s.data) {
		t.Errorf("received file differs from the sent one (%d bytes, want %d)", len(got), len(s.data))
	}
	if names := s.inboxNames(t); len(names) != 1 {
		t.Errorf("inbox holds %q, want only copy.bin", names)
	}
}

// TestHostileNames: names that would escape the directory are refused by the
// receiver, whatever the sender claims, and nothing is written anywhere.
func TestHostileNames(t *testing.T) {
	s := newSetup(t)
	for _, name := range []string{"../evil", "a/b", "/tmp/evil", `..\evil`, "..", "c:evil", "tab\tname"} {
		t.Run(name, func(t *testing.T) {
			recv, addr, hash := s.receiver(t)
			r := runtest.Run(t, 30*time.Second, s.dir, bin, s.sendArgs(addr, hash, "-name", name)...)
			line := runtest.OneLine(t, r)
			if r.Code != 1 || !strings.Contains(line, "the receiver refused the file") {
				t.Errorf("sender: exit %d, stderr %q: want 1 and a refusal", r.Code, line)
			}
			rr := recv.Wait(t, 20*time.Second)
			line = runtest.OneLine(t, rr)
			if rr.Code != 1 || !strings.Contains(line, "refused a file: name") {
				t.Errorf("receiver: exit %d, stderr %q: want 1 and a refusal", rr.Code, line)
			}
			if names := s.inboxNames(t); len(names) != 0 {
				t.Errorf("inbox holds %q, want nothing", names)
			}
			for _, p := range []string{filepath.Join(s.dir, "evil"), filepath.Join(s.inbox, "a")} {
				if _, err := os.Lstat(p); err == nil {
					t.Errorf("%s was created", p)
				}
			}
		})
	}
}

func TestCheckName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"report.pdf", true},
		{"..hidden", true},
		{".profile", true},
		{"日本語.txt", true},
		{"with space", true},
		{"", false},
		{".", false},
		{"..", false},
		{"../evil", false},
		{"a/b", false},
		{`a\b`, false},
		{"/etc/passwd", false},
		{`C:\x`, false},
		{"c:x", false},
		{"nul\x00byte", false},
		{"line\nbreak", false},
		{"\x7f", false},
		{strings.Repeat("x", 256), false},
		{"\xff\xfe", false},
	} {
		if err := checkName(tc.name); (err == nil) != tc.ok {
			t.Errorf("checkName(%q) = %v, want ok %v", tc.name, err, tc.ok)
		}
	}
}

// TestInterrupted: a sender interrupted in the middle leaves nothing in the
// receiver's directory, neither under the final name nor as a temporary file.
func TestInterrupted(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no os.Interrupt for other processes on Windows")
	}
	s := newSetup(t)
	recv, addr, hash := s.receiver(t, "-progress", "50ms")
	sender := runtest.Start(t, s.dir, bin, s.sendArgs(addr, hash, "-rate", "1000000", "-progress", "50ms")...)
	recv.WaitLine(t, "received ", 10*time.Second) // the first progress line: data is flowing
	if names := s.inboxNames(t); len(names) != 1 || !strings.HasSuffix(names[0], ".part") {
		t.Errorf("during the transfer the inbox holds %q, want one .part file", names)
	}
	sender.Interrupt(t)
	r := sender.Wait(t, 20*time.Second)
	if line := runtest.OneLine(t, r); r.Code != 1 || !strings.Contains(line, "interrupted") {
		t.Errorf("sender: exit %d, stderr %q", r.Code, line)
	}
	rr := recv.Wait(t, 20*time.Second)
	if line := runtest.OneLine(t, rr); rr.Code != 1 || !strings.Contains(line, "receiving data.bin") {
		t.Errorf("receiver: exit %d, stderr %q", rr.Code, line)
	}
	if names := s.inboxNames(t); len(names) != 0 {
		t.Errorf("after the failed transfer the inbox holds %q, want nothing", names)
	}
}

// TestExisting: the receiver never overwrites a file.
func TestExisting(t *testing.T) {
	s := newSetup(t)
	old := filepath.Join(s.inbox, "data.bin")
	os.WriteFile(old, []byte("keep me"), 0o644)
	recv, addr, hash := s.receiver(t)
	r := runtest.Run(t, 30*time.Second, s.dir, bin, s.sendArgs(addr, hash)...)
	if line := runtest.OneLine(t, r); r.Code != 1 || !strings.Contains(line, "already exists") {
		t.Errorf("sender: exit %d, stderr %q", r.Code, line)
	}
	recv.Wait(t, 20*time.Second)
	if b, _ := os.ReadFile(old); string(b) != "keep me" {
		t.Errorf("existing file overwritten")
	}
}

// TestUntrusted: a sender that pins another hash gives up with one line
// about the certificate, and the receiver goes on waiting.
func TestUntrusted(t *testing.T) {
	s := newSetup(t)
	recv, addr, _ := s.receiver(t)
	r := runtest.Run(t, 30*time.Second, s.dir, bin, s.sendArgs(addr, strings.Repeat("ab", 32))...)
	if line := runtest.OneLine(t, r); r.Code != 1 || !strings.Contains(line, "certificate") {
		t.Errorf("sender: exit %d, stderr %q", r.Code, line)
	}
	recv.WaitLine(t, "sender 127.0.0.1:", 10*time.Second)
	recv.Interrupt(t)
	if rr := recv.Wait(t, 20*time.Second); rr.Code != 0 {
		t.Errorf("receiver: exit %d after interrupt, stderr %q", rr.Code, rr.Stderr)
	}
}

func TestUsage(t *testing.T) {
	dir := t.TempDir()
	hash := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"nothing", nil, "give either -send FILE"},
		{"unknown flag", []string{"-bogus"}, "flag provided but not defined"},
		{"send without connect", []string{"-send", "x"}, "-send goes with -connect"},
		{"receive without listen", []string{"-receive", "."}, "-receive goes with -listen"},
		{"missing file", []string{"-send", "nope", "-connect", "127.0.0.1:1", "-trust", hash}, "nope"},
		{"missing dir", []string{"-receive", "nope", "-listen", "127.0.0.1:0", "-trust", hash}, "not an existing directory"},
		{"no trust", []string{"-receive", ".", "-listen", "127.0.0.1:0"}, "no -trust hash"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runtest.Run(t, 10*time.Second, dir, bin, tc.args...)
			line := runtest.OneLine(t, r)
			if r.Code != 2 || !strings.Contains(line, tc.want) {
				t.Errorf("exit %d, stderr %q: want 2 and %q", r.Code, line, tc.want)
			}
		})
	}
}

// TestStoreFailures runs the receiver's side in process, over a conntest
// pair, against senders that break the protocol: each must be answered with
// ERR and leave the directory empty.
func TestStoreFailures(t *testing.T) {
	for _, tc := range []struct {
		name    string
		hdr     header
		body    []byte
		trailer []byte
		want    string
	}{
		{"hash mismatch", header{"x.bin", 5}, []byte("hello"), make([]byte, 32), "sha256 mismatch"},
		{"truncated data", header{"x.bin", 10}, []byte("hello"), nil, "stopped after 5 of 10 bytes"},
		{"truncated checksum", header{"x.bin", 5}, []byte("hello"), []byte{1, 2, 3}, "reading the checksum"},
		{"data after checksum", header{"x.bin", 0}, nil, make([]byte, 33), "data after the checksum"},
		{"negative size", header{"x.bin", -1}, nil, nil, "negative size"},
		{"empty name", header{"", 0}, nil, nil, "empty name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			out, err := os.Create(filepath.Join(t.TempDir(), "out"))
			if err != nil {
				t.Fatal(err)
			}
			defer out.Close()
			client, server := conntest.NewPair(t, conntest.WithALPN(alpn))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()

			go func() {
				s, err := client.OpenOutboundStream(ctx, stream.Bidirectional, false)
				if err != nil {
					return
				}
				writeHeader(s, tc.hdr)
				s.Write(tc.body)
				s.Write(tc.trailer)
				s.Close()
			}()
			cfg := &config{receive: dir}
			err = receiveOne(ctx, server, out, cfg, func(err error) error { return err })
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("receiveOne: %v, want an error with %q", err, tc.want)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("directory holds %v after a failed transfer", entries)
			}
		})
	}
}
