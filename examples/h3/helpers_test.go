package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"go.uber.org/goleak"

	"github.com/quicconn/quicconn/certverify"
	"github.com/quicconn/quicconn/conn"
)

// checkLeaks registers a goleak check that runs after every other cleanup of
// t (cleanups run last-in first-out), so servers and clients are closed by
// then. Nothing is excluded.
func checkLeaks(t *testing.T) {
	t.Helper()
	t.Cleanup(func() { goleak.VerifyNone(t) })
}

// bigSize is the size of the bulk transfer the interop tests make.
const bigSize = 16 << 20

var bigOnce = sync.OnceValues(func() ([]byte, string) {
	b := make([]byte, bigSize)
	r := rand.NewChaCha8([32]byte{'h', '3'})
	_, _ = r.Read(b)
	sum := sha256.Sum256(b)
	return b, hex.EncodeToString(sum[:])
})

// bigFile returns the 16 MiB body and its hex SHA-256.
func bigFile() ([]byte, string) { return bigOnce() }

const smallPage = "<!DOCTYPE html><html><body><p id=\"hello\">hello over HTTP/3</p></body></html>\n"

// testHandler is what both servers serve in the interop tests:
//
//	GET  /          a small HTML page
//	GET  /big       16 MiB of pseudo-random bytes
//	GET  /n/{i}     "item i", for the concurrency test
//	POST /sha256    the hex SHA-256 of the request body
//	else            404
func testHandler() http.Handler {
	big, _ := bigFile()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, smallPage)
	})
	mux.HandleFunc("GET /big", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.Itoa(len(big)))
		_, _ = io.Copy(w, bytes.NewReader(big))
	})
	mux.HandleFunc("GET /n/{i}", func(w http.ResponseWriter, r *http.Request) {
		_, _ = fmt.Fprintf(w, "item %s", r.PathValue("i"))
	})
	mux.HandleFunc("POST /sha256", func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		_, _ = fmt.Fprintf(w, "%x %d", h.Sum(nil), n)
	})
	return mux
}

// accessLog records a server's AccessEntries.
type accessLog struct {
	mu      sync.Mutex
	entries []AccessEntry
}

func (l *accessLog) add(e AccessEntry) {
	l.mu.Lock()
	l.entries = append(l.entries, e)
	l.mu.Unlock()
}

// find returns the first entry for method and path.
func (l *accessLog) find(method, path string) (AccessEntry, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.entries {
		if e.Method == method && e.Path == path {
			return e, true
		}
	}
	return AccessEntry{}, false
}

// ourServer is the example's server on 127.0.0.1 with a fresh certificate.
type ourServer struct {
	addr     *net.UDPAddr
	cred     *certverify.Credential
	spki     string // base64 SPKI SHA-256
	log      *accessLog
	srv      *Server
	certDER  []byte
	shutdown func()
}

func (s *ourServer) url(path string) string { return "https://" + s.addr.String() + path }

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func startOurServer(t *testing.T, h http.Handler) *ourServer {
	t.Helper()
	cred, err := serverCredential("127.0.0.1", "", "")
	if err != nil {
		t.Fatal(err)
	}
	spki, err := spkiHash(cred)
	if err != nil {
		t.Fatal(err)
	}
	reg := conn.NewRegistration("h3-test-server")
	l, err := listenH3(reg, "127.0.0.1:0", cred, quietLogger())
	if err != nil {
		reg.Close()
		t.Fatal(err)
	}
	s := &ourServer{
		addr:    l.Addr().(*net.UDPAddr),
		cred:    cred,
		spki:    spki,
		log:     &accessLog{},
		certDER: cred.Certificate.Certificate[0],
	}
	s.srv = &Server{Handler: h, Logger: quietLogger(), AccessLog: s.log.add}
	done := make(chan error, 1)
	go func() { done <- s.srv.Serve(context.Background(), l) }()
	var once sync.Once
	s.shutdown = func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = s.srv.Shutdown(ctx)
			if err := <-done; err != nil && !errors.Is(err, net.ErrClosed) {
				t.Errorf("Serve: %v", err)
			}
			_ = reg.Close()
		})
	}
	t.Cleanup(s.shutdown)
	return s
}

// quicGoServer is quic-go's own http3.Server on 127.0.0.1.
type quicGoServer struct {
	addr    string
	certDER []byte
}

func (s *quicGoServer) url(path string) string { return "https://" + s.addr + path }

func startQuicGoServer(t *testing.T, h http.Handler) *quicGoServer {
	t.Helper()
	cred, err := certverify.GenerateSelfSigned([]string{"127.0.0.1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tlsConf := http3.ConfigureTLSConfig(&tls.Config{Certificates: []tls.Certificate{cred.Certificate}})
	// An explicit Transport, closed at cleanup: quic.ListenAddrEarly's own
	// transport keeps its goroutines until the closed connections it still
	// remembers expire, which can outlast the test's leak check.
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	tr := &quic.Transport{Conn: udp}
	ln, err := tr.ListenEarly(tlsConf, &quic.Config{})
	if err != nil {
		udp.Close()
		t.Fatal(err)
	}
	srv := &http3.Server{Handler: h, Logger: quietLogger()}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.ServeListener(ln)
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		_ = ln.Close()
		<-done
		_ = tr.Close()
		_ = udp.Close()
	})
	return &quicGoServer{addr: ln.Addr().String(), certDER: cred.Certificate.Certificate[0]}
}

// ourClient returns an http.Client on the example's Transport, trusting only
// the certificate der.
func ourClient(t *testing.T, der []byte) *http.Client {
	t.Helper()
	cred := &certverify.Credential{}
	cred.TrustHashes(certverify.HashOf(der))
	tr := &Transport{Credential: cred, Logger: quietLogger()}
	t.Cleanup(func() { _ = tr.Close() })
	return &http.Client{Transport: tr, Timeout: 60 * time.Second}
}

// quicGoClient returns an http.Client on quic-go's http3.Transport, trusting
// only the self-signed certificate der.
func quicGoClient(t *testing.T, der []byte) *http.Client {
	t.Helper()
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	tr := &http3.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool},
		Logger:          quietLogger(),
	}
	t.Cleanup(func() { _ = tr.Close() })
	return &http.Client{Transport: tr, Timeout: 60 * time.Second}
}

// get fetches url and returns the status, body and elapsed time.
func get(t *testing.T, c *http.Client, url string) (int, []byte, time.Duration) {
	t.Helper()
	start := time.Now()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading body: %v", url, err)
	}
	if resp.ProtoMajor != 3 {
		t.Errorf("GET %s: proto %s, want HTTP/3", url, resp.Proto)
	}
	return resp.StatusCode, body, time.Since(start)
}

// spkiOf returns the base64 SHA-256 of a DER certificate's SPKI.
func spkiOf(der []byte) (string, error) {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return "", err
	}
	h := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(h[:]), nil
}
