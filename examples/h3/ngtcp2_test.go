package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/quicconn/quicconn/certverify"
)

// ngtcp2's example programs, from Debian's ngtcp2-client and ngtcp2-server
// packages (GnuTLS builds): .ci/interop installs them.
const ngtcp2Missing = "not found in /usr/bin, /usr/sbin or PATH: run .ci/interop to install Debian's ngtcp2-client and ngtcp2-server"

// ngtcp2Path returns the path of gtlsclient or gtlsserver, or fails (CI=true)
// or skips the test, as chromiumPath does.
func ngtcp2Path(t *testing.T, name string) string {
	t.Helper()
	for _, dir := range []string{"/usr/bin", "/usr/sbin"} {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatal(name + " " + ngtcp2Missing)
	}
	t.Skip(name + " " + ngtcp2Missing)
	return ""
}

// qlogClose is a CONNECTION_CLOSE frame in an ngtcp2 qlog.
type qlogClose struct {
	Sent   bool   // sent by the qlog's owner, else received
	Packet string // the packet's type: "initial", "handshake", "1RTT"
	Space  string // "application" or "transport"
	Code   uint64
}

func (c qlogClose) String() string {
	dir := "received"
	if c.Sent {
		dir = "sent"
	}
	return fmt.Sprintf("%s in %s: %s 0x%x", dir, c.Packet, c.Space, c.Code)
}

// applicationClose reports whether c is an application's close with
// code: in a 1-RTT packet, or in an Initial or Handshake packet, where RFC
// 9000 (section 10.2.3) has it sent as the transport error
// APPLICATION_ERROR (0xc), code withheld. A client that closes right after
// its handshake, before the server has confirmed it, sends both forms, and
// which of them the server reads first depends on timing.
func (c qlogClose) applicationClose(code uint64) bool {
	switch c.Packet {
	case "initial", "handshake":
		return c.Space == "transport" && c.Code == 0xc
	}
	return c.Space == "application" && c.Code == code
}

// qlogCloses returns the CONNECTION_CLOSE frames of the qlog files (ngtcp2
// writes JSON-SEQ: records separated by the RS character), in order.
func qlogCloses(t *testing.T, files ...string) []qlogClose {
	t.Helper()
	var out []qlogClose
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for rec := range bytes.SplitSeq(b, []byte{0x1e}) {
			if !bytes.Contains(rec, []byte(`"connection_close"`)) {
				continue
			}
			var ev struct {
				Name string `json:"name"`
				Data struct {
					Header struct {
						PacketType string `json:"packet_type"`
					} `json:"header"`
					Frames []struct {
						FrameType    string  `json:"frame_type"`
						ErrorSpace   string  `json:"error_space"`
						RawErrorCode *uint64 `json:"raw_error_code"`
					} `json:"frames"`
				} `json:"data"`
			}
			if err := json.Unmarshal(rec, &ev); err != nil {
				t.Fatalf("%s: qlog record %.200q: %v", f, rec, err)
			}
			for _, fr := range ev.Data.Frames {
				if fr.FrameType != "connection_close" {
					continue
				}
				if fr.RawErrorCode == nil {
					t.Fatalf("%s: connection_close without raw_error_code in %.200q", f, rec)
				}
				out = append(out, qlogClose{
					Sent:   ev.Name == "transport:packet_sent",
					Packet: ev.Data.Header.PacketType,
					Space:  fr.ErrorSpace,
					Code:   *fr.RawErrorCode,
				})
			}
		}
	}
	return out
}

// wantCloses checks the CONNECTION_CLOSE frames a qlog shows on the wire.
func wantCloses(t *testing.T, got []qlogClose, want ...qlogClose) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("CONNECTION_CLOSE frames in ngtcp2's qlog: %v, want %v", got, want)
	}
}

// h3NoErrorSent is an H3_NO_ERROR close sent in a 1-RTT packet, as qlog
// shows it.
var h3NoErrorSent = qlogClose{Sent: true, Packet: "1RTT", Space: "application", Code: 0x100}

// wantNoErrorCloses checks that the qlog shows at least one
// CONNECTION_CLOSE, received, and every one an H3_NO_ERROR close in either
// of its forms (see applicationClose).
func wantNoErrorCloses(t *testing.T, got []qlogClose) {
	t.Helper()
	ok := len(got) > 0
	for _, c := range got {
		ok = ok && !c.Sent && c.applicationClose(0x100)
	}
	if !ok {
		t.Errorf("CONNECTION_CLOSE frames in ngtcp2's qlog: %v, want H3_NO_ERROR (0x100, or APPLICATION_ERROR 0xc in a handshake packet) and nothing else", got)
	}
}

// TestNgtcp2ClientOurServer: ngtcp2's gtlsclient fetches the page and the
// 16 MiB file from the example's server and uploads 16 MiB to it, over one
// connection, and closes with H3_NO_ERROR and nothing else.
func TestNgtcp2ClientOurServer(t *testing.T) {
	checkLeaks(t)
	client := ngtcp2Path(t, "gtlsclient")
	srv := startOurServer(t, testHandler())
	dir := t.TempDir()
	big, bigSum := bigFile()
	upload := filepath.Join(dir, "upload")
	if err := os.WriteFile(upload, big, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	qlog := filepath.Join(dir, "client.sqlog")
	download := filepath.Join(dir, "download")
	if err := os.Mkdir(download, 0o755); err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(srv.addr.String())

	// 16 MiB up, then the page and 16 MiB down.
	start := time.Now()
	cmd := exec.CommandContext(ctx, client, "-q", "--exit-on-all-streams-close",
		"--download", download, "--qlog-file", qlog, "-m", "POST", "-d", upload,
		host, port, srv.url("/sha256"))
	dieWithTest(cmd)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gtlsclient POST: %v\n%s", err, out)
	}
	got, err := os.ReadFile(filepath.Join(download, "sha256"))
	if err != nil {
		t.Fatal(err)
	}
	if want := bigSum + " " + strconv.Itoa(bigSize); string(got) != want {
		t.Errorf("POST /sha256 of 16 MiB answered %q, want %q", got, want)
	}
	t.Logf("gtlsclient uploaded 16 MiB in %s", time.Since(start).Round(time.Millisecond))
	wantCloses(t, qlogCloses(t, qlog), h3NoErrorSent)

	start = time.Now()
	qlog = filepath.Join(dir, "client2.sqlog")
	cmd = exec.CommandContext(ctx, client, "-q", "--exit-on-all-streams-close",
		"--download", download, "--qlog-file", qlog,
		host, port, srv.url("/"), srv.url("/big"))
	dieWithTest(cmd)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gtlsclient GET: %v\n%s", err, out)
	}
	t.Logf("gtlsclient fetched the page and 16 MiB in %s", time.Since(start).Round(time.Millisecond))
	page, err := os.ReadFile(filepath.Join(download, "index.html"))
	if err != nil || string(page) != smallPage {
		t.Errorf("GET /: %q (%v), want %q", page, err, smallPage)
	}
	body, err := os.ReadFile(filepath.Join(download, "big"))
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(body); len(body) != bigSize || hex.EncodeToString(sum[:]) != bigSum {
		t.Errorf("GET /big: %d bytes with sha256 %x, want %d bytes with %s", len(body), sum, bigSize, bigSum)
	}
	wantCloses(t, qlogCloses(t, qlog), h3NoErrorSent)

	for _, path := range []string{"/", "/big"} {
		if e, ok := srv.log.find("GET", path); !ok || e.Proto != "HTTP/3" || e.Status != http.StatusOK {
			t.Errorf("access log for GET %s: %+v (found %v), want HTTP/3 200", path, e, ok)
		}
	}
}

// ngtcp2Server is a gtlsserver process serving a directory on loopback,
// with a fresh certificate, writing qlogs.
type ngtcp2Server struct {
	addr    string
	certDER []byte
	spki    string // base64 SPKI SHA-256
	qlogDir string

	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited

	mu      sync.Mutex
	closes  int           // CONNECTION_CLOSE frames it logged as received
	changed chan struct{} // signalled (capacity 1) when closes grows
	tail    []string      // its last log lines, for failures
}

// startNgtcp2Server starts gtlsserver on a free loopback port, serving
// files (name to content), and kills it at the end of the test. Its debug
// log (stderr) says when a CONNECTION_CLOSE arrives.
func startNgtcp2Server(t *testing.T, files map[string][]byte) *ngtcp2Server {
	t.Helper()
	bin := ngtcp2Path(t, "gtlsserver")
	dir := t.TempDir()
	www := filepath.Join(dir, "www")
	s := &ngtcp2Server{qlogDir: filepath.Join(dir, "qlog"), done: make(chan struct{}), changed: make(chan struct{}, 1)}
	for _, d := range []string{www, s.qlogDir} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(www, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cred, err := certverify.GenerateSelfSigned([]string{"127.0.0.1", "localhost"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.certDER = cred.Certificate.Certificate[0]
	if s.spki, err = spkiOf(s.certDER); err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(cred.Certificate.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.certDER}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	// gtlsserver takes a port, not port 0: take one the kernel has just
	// handed out and released.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := pc.LocalAddr().(*net.UDPAddr).Port
	pc.Close()
	s.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))

	s.cmd = exec.Command(bin, "--no-quic-dump", "--no-http-dump", "-d", www, "--qlog-dir", s.qlogDir,
		"127.0.0.1", strconv.Itoa(port), keyFile, certFile)
	dieWithTest(s.cmd)
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("starting gtlsserver: %v", err)
	}
	ready := make(chan struct{})
	go func() {
		// The debug log has a few lines for every packet: it is read
		// without copying, lest the server wait on a full pipe.
		r := bufio.NewReaderSize(stderr, 256<<10)
		first := true
		for {
			line, err := r.ReadSlice('\n')
			if len(line) == 0 && err != nil {
				break
			}
			if first {
				// gtlsserver prints its document root and binds its
				// socket right after; a client's first Initial that
				// comes before the bind is resent after a probe timeout.
				first = false
				close(ready)
			}
			closeRx := bytes.Contains(line, []byte(" frm rx ")) && bytes.Contains(line, []byte(" CONNECTION_CLOSE("))
			// Lines of ngtcp2's packet trace start with "I" and a
			// timestamp; the others are events worth showing on failure.
			if !closeRx && bytes.HasPrefix(line, []byte("I0")) {
				continue
			}
			s.mu.Lock()
			if closeRx {
				s.closes++
				select {
				case s.changed <- struct{}{}:
				default:
				}
			}
			if len(s.tail) == 50 {
				s.tail = s.tail[1:]
			}
			s.tail = append(s.tail, strings.TrimSpace(string(line)))
			s.mu.Unlock()
		}
		if first {
			close(ready)
		}
		_ = s.cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		select {
		case <-s.done:
		default:
			_ = s.cmd.Process.Kill()
			<-s.done
		}
		if t.Failed() {
			s.mu.Lock()
			t.Logf("gtlsserver's last log lines:\n%s", strings.Join(s.tail, "\n"))
			s.mu.Unlock()
		}
	})
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		t.Fatal("gtlsserver printed nothing in 10s")
	}
	return s
}

func (s *ngtcp2Server) url(path string) string { return "https://" + s.addr + path }

// stop waits until the server has received n CONNECTION_CLOSE frames, then
// stops it with SIGINT, on which it exits with its qlogs complete, and
// returns the qlog files.
func (s *ngtcp2Server) stop(t *testing.T, n int) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for {
		s.mu.Lock()
		got := s.closes
		s.mu.Unlock()
		if got >= n {
			break
		}
		select {
		case <-s.changed:
		case <-s.done:
			t.Fatalf("gtlsserver exited having received %d CONNECTION_CLOSE frames, want %d", got, n)
		case <-ctx.Done():
			t.Fatalf("gtlsserver received %d CONNECTION_CLOSE frames, want %d: %v", got, n, ctx.Err())
		}
	}
	if err := s.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.done:
	case <-ctx.Done():
		t.Fatalf("gtlsserver still running after SIGINT: %v", ctx.Err())
	}
	files, err := filepath.Glob(filepath.Join(s.qlogDir, "*.sqlog"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no qlog from gtlsserver (%v)", err)
	}
	return files
}

// TestOurClientNgtcp2Server: the example's client, pinning the server's
// certificate, fetches a page and 16 MiB from ngtcp2's gtlsserver and
// closes with H3_NO_ERROR, which is all the server receives.
func TestOurClientNgtcp2Server(t *testing.T) {
	checkLeaks(t)
	big, bigSum := bigFile()
	srv := startNgtcp2Server(t, map[string][]byte{"index.html": []byte(smallPage), "big": big})
	cred := &certverify.Credential{}
	cred.TrustHashes(certverify.HashOf(srv.certDER))
	tr := &Transport{Credential: cred, Logger: quietLogger()}
	c := &http.Client{Transport: tr, Timeout: time.Minute}

	status, body, _ := get(t, c, srv.url("/"))
	if status != http.StatusOK || string(body) != smallPage {
		t.Errorf("GET /: %d %q, want 200 %q", status, body, smallPage)
	}
	status, body, d := get(t, c, srv.url("/big"))
	sum := sha256.Sum256(body)
	if status != http.StatusOK || len(body) != bigSize || hex.EncodeToString(sum[:]) != bigSum {
		t.Fatalf("GET /big: %d, %d bytes, sha256 %x; want 200, %d bytes, %s", status, len(body), sum, bigSize, bigSum)
	}
	t.Logf("16 MiB from gtlsserver in %s (%.0f MB/s)", d.Round(time.Millisecond), bigSize/d.Seconds()/1e6)
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	wantNoErrorCloses(t, qlogCloses(t, srv.stop(t, 1)...))
}

// wantBadCertificateCloses checks that the qlog shows the client's refusal
// of the server's certificate and nothing else: crypto/tls refuses before
// the client has 1-RTT keys, so the close goes in Initial and Handshake
// packets, as CRYPTO_ERROR 0x12a (bad_certificate).
func wantBadCertificateCloses(t *testing.T, got []qlogClose) {
	t.Helper()
	ok := len(got) > 0
	for _, c := range got {
		ok = ok && !c.Sent && c.Packet != "1RTT" && c.Space == "transport" && c.Code == 0x12a
	}
	if !ok {
		t.Errorf("CONNECTION_CLOSE frames in ngtcp2's qlog: %v, want CRYPTO_ERROR 0x12a (bad_certificate) in handshake packets and nothing else", got)
	}
}

// TestOurClientNgtcp2ServerWrongPin: the example's command-line client
// refuses gtlsserver when -pin names another key or certificate, with one
// "h3:" prefix on its error. Either pin refuses the certificate in the
// handshake (certverify pins SPKI hashes as it pins certificate hashes),
// with the TLS alert bad_certificate (CRYPTO_ERROR 0x12a).
func TestOurClientNgtcp2ServerWrongPin(t *testing.T) {
	checkLeaks(t)
	other := sha256.Sum256([]byte("another key"))
	cases := []struct {
		name    string
		pin     string
		wantErr string
		closes  func(t *testing.T, got []qlogClose)
	}{
		{"SPKI hash", base64.StdEncoding.EncodeToString(other[:]),
			"SPKI hash not trusted", wantBadCertificateCloses},
		{"certificate hash", hex.EncodeToString(other[:]),
			"certificate hash not trusted", wantBadCertificateCloses},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := startNgtcp2Server(t, map[string][]byte{"index.html": []byte(smallPage)})
			var stdout, stderr bytes.Buffer
			code := run([]string{"-get", srv.url("/"), "-pin", tc.pin}, &stdout, &stderr)
			lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
			last := lines[len(lines)-1]
			if code != 1 || !strings.HasPrefix(last, "h3: ") || strings.HasPrefix(last, "h3: h3:") || !strings.Contains(last, tc.wantErr) {
				t.Errorf("exit %d, last line of stderr %q; want exit 1 and one \"h3: \" before an error mentioning %q", code, last, tc.wantErr)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout: %q, want nothing", stdout.String())
			}
			tc.closes(t, qlogCloses(t, srv.stop(t, 1)...))
		})
	}
}
