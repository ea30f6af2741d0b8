// Package quinn_test checks that quicconn interoperates with quinn, the
// Rust QUIC stack, and rustls: mutual pinning by certificate hash and by
// ed25519 endorsement, byte and message streams, datagrams, close codes and
// reason phrases, and every refusal, with each stack as client and as
// server and each driving the exchange. The quinn side is the quinn-peer
// program in this directory (src/), which .ci/interop builds from Debian's
// crate packages; its certificates come from the openssl command.
package quinn_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
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

	"github.com/quicconn/quicconn/certverify"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// peerPath is where cargo puts the peer, relative to this directory (the
// working directory of go test).
var peerPath = filepath.Join("target", "release", "quinn-peer")

// peerMissing is what the tests say when the quinn peer cannot be had.
const peerMissing = "bash .ci/interop installs Debian's crates (and cargo if missing) and builds it"

// buildPeer returns the absolute path of the quinn peer. In CI (CI=true)
// .ci/interop has built it. Elsewhere it is built here when cargo is
// installed, which costs nothing when the binary is up to date; without
// cargo, a binary built before is used.
var buildPeer = sync.OnceValues(func() (path string, missing error) {
	bin, err := filepath.Abs(peerPath)
	if err != nil {
		return "", err
	}
	_, statErr := os.Stat(bin)
	if os.Getenv("CI") == "true" {
		if statErr != nil {
			return "", fmt.Errorf("quinn peer not built (%v): %s", statErr, peerMissing)
		}
		return bin, nil
	}
	cargo, err := exec.LookPath("cargo")
	if err != nil {
		if statErr == nil {
			return bin, nil
		}
		return "", nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 9*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, cargo, "build", "--release", "--offline", "--locked", "-j", "2")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("cargo build of the quinn peer: %v\n%s\n(%s)", err, out, peerMissing)
	}
	return bin, nil
})

// peerBinary returns the quinn peer's path. It fails the test in CI, or
// when the build fails, and skips it on a machine with neither the peer
// nor cargo.
func peerBinary(t *testing.T) string {
	t.Helper()
	bin, err := buildPeer()
	switch {
	case err != nil:
		t.Fatal(err)
	case bin == "":
		t.Skip("quinn peer not built and no cargo to build it: " + peerMissing)
	}
	return bin
}

// peer is a running quinn-peer process. Its stdout, one event a line, is
// collected as it comes; the process is killed at the end of the test if it
// has not exited by then.
type peer struct {
	args []string

	mu      sync.Mutex
	out     []string      // stdout lines so far
	stderr  bytes.Buffer  // written by exec's copying goroutine, read after done
	changed chan struct{} // signalled (capacity 1) when out grows
	next    int           // the first line next has not looked at

	done chan struct{} // closed when the process has exited
	err  error         // cmd.Wait's, once done
}

func startPeer(t *testing.T, args ...string) *peer {
	t.Helper()
	p := &peer{args: args, changed: make(chan struct{}, 1), done: make(chan struct{})}
	cmd := exec.Command(peerBinary(t), args...)
	cmd.Stderr = &p.stderr
	dieWithTest(cmd)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting quinn-peer: %v", err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.mu.Lock()
			p.out = append(p.out, sc.Text())
			p.mu.Unlock()
			select {
			case p.changed <- struct{}{}:
			default:
			}
		}
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("quinn-peer %s:\n%s\nstderr: %s", strings.Join(args, " "), p.output(), p.stderr.String())
		}
	})
	return p
}

// output returns the stdout lines so far.
func (p *peer) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.out, "\n")
}

// expect waits for the next line that starts with prefix, skipping others,
// and returns the rest of it.
func (p *peer) expect(ctx context.Context, prefix string) (string, error) {
	for {
		p.mu.Lock()
		for ; p.next < len(p.out); p.next++ {
			if rest, ok := strings.CutPrefix(p.out[p.next], prefix); ok {
				p.next++
				p.mu.Unlock()
				return rest, nil
			}
		}
		p.mu.Unlock()
		select {
		case <-p.changed:
		case <-p.done:
			// Lines may have arrived just before the exit.
			p.mu.Lock()
			more := p.next < len(p.out)
			p.mu.Unlock()
			if !more {
				return "", fmt.Errorf("quinn-peer exited (%v) without printing %q", p.err, prefix)
			}
		case <-ctx.Done():
			return "", fmt.Errorf("waiting for quinn-peer to print %q: %w", prefix, ctx.Err())
		}
	}
}

// has reports whether some line so far is exactly line.
func (p *peer) has(line string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.out {
		if l == line {
			return true
		}
	}
	return false
}

// hasReason reports whether some line is prefix and reason, alone or
// followed by ": " and details.
func (p *peer) hasReason(prefix, reason string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.out {
		if rest, ok := strings.CutPrefix(l, prefix+reason); ok && (rest == "" || strings.HasPrefix(rest, ": ")) {
			return true
		}
	}
	return false
}

// contains reports whether some line so far contains s.
func (p *peer) contains(s string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.out {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

// wait waits for the process to exit and returns its exit code.
func (p *peer) wait(ctx context.Context) (int, error) {
	select {
	case <-p.done:
	case <-ctx.Done():
		return -1, fmt.Errorf("waiting for quinn-peer to exit: %w", ctx.Err())
	}
	var ee *exec.ExitError
	switch {
	case p.err == nil:
		return 0, nil
	case errors.As(p.err, &ee):
		return ee.ExitCode(), nil
	}
	return -1, p.err
}

// creds are the files of a certificate made by openssl.
type creds struct {
	cert, key string
	der       []byte
	hash      string // hex SHA-256 of der
}

// endorsement options for opensslCert.
type endorsement struct {
	keys []ed25519.PrivateKey
	// tamper, when set, edits the extension's entries (key || signature,
	// 96 bytes each) before they are encoded.
	tamper func(entries [][]byte) [][]byte
}

// opensslCert makes an ECDSA P-256 key and a self-signed certificate for
// "localhost" with the openssl command, in dir. With endorsers, the
// certificate carries the endorsement extension (OID 1.2.3.4.5.6), whose
// DER is built here from the layout certverify documents and handed to
// openssl with -addext.
func opensslCert(t *testing.T, dir, name string, e endorsement) creds {
	t.Helper()
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Fatalf("the openssl command makes the quinn peer's certificates: %v", err)
	}
	run := func(args ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		if out, err := exec.CommandContext(ctx, openssl, args...).CombinedOutput(); err != nil {
			t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	c := creds{cert: filepath.Join(dir, name+".pem"), key: filepath.Join(dir, name+".key")}
	run("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", c.key)
	spkiFile := filepath.Join(dir, name+".spki")
	run("pkey", "-in", c.key, "-pubout", "-outform", "DER", "-out", spkiFile)
	spki, err := os.ReadFile(spkiFile)
	if err != nil {
		t.Fatal(err)
	}
	req := []string{"req", "-new", "-x509", "-key", c.key, "-out", c.cert, "-days", "1",
		"-subj", "/CN=" + name, "-addext", "subjectAltName=DNS:localhost"}
	if len(e.keys) > 0 {
		entries := make([][]byte, len(e.keys))
		for i, k := range e.keys {
			entries[i] = append(append([]byte{}, k.Public().(ed25519.PublicKey)...), ed25519.Sign(k, spki)...)
		}
		if e.tamper != nil {
			entries = e.tamper(entries)
		}
		req = append(req, "-addext", "1.2.3.4.5.6=DER:"+hex.EncodeToString(endorsementValue(entries)))
	}
	run(req...)
	pemBytes, err := os.ReadFile(c.cert)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		t.Fatalf("%s: no PEM block", c.cert)
	}
	c.der = block.Bytes
	cert, err := x509.ParseCertificate(c.der)
	if err != nil {
		t.Fatal(err)
	}
	// Endorsements sign the SPKI as it appears in the certificate.
	if !bytes.Equal(cert.RawSubjectPublicKeyInfo, spki) {
		t.Fatal("openssl's SubjectPublicKeyInfo in the certificate differs from openssl pkey -pubout")
	}
	c.hash = certverify.HashOf(c.der).String()
	return c
}

// endorsementValue encodes Endorsements ::= SEQUENCE OF OCTET STRING, one
// OCTET STRING per entry, with minimal DER lengths.
func endorsementValue(entries [][]byte) []byte {
	var body []byte
	for _, e := range entries {
		body = append(body, 0x04)
		body = appendLength(body, len(e))
		body = append(body, e...)
	}
	return append(appendLength([]byte{0x30}, len(body)), body...)
}

func appendLength(b []byte, n int) []byte {
	switch {
	case n < 0x80:
		return append(b, byte(n))
	case n < 0x100:
		return append(b, 0x81, byte(n))
	case n < 0x10000:
		return append(b, 0x82, byte(n>>8), byte(n))
	}
	return append(b, 0x83, byte(n>>16), byte(n>>8), byte(n))
}

// newEndorser returns a fresh ed25519 key and the hex of its public key,
// as quinn-peer's --trust-key takes it.
func newEndorser(t *testing.T) (ed25519.PrivateKey, string) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return priv, hex.EncodeToString(pub)
}

// otherHash is a certificate hash that pins nothing that exists.
func otherHash(t *testing.T) certverify.CertHash {
	t.Helper()
	var h certverify.CertHash
	if _, err := rand.Read(h[:]); err != nil {
		t.Fatal(err)
	}
	return h
}
