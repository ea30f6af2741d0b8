package stream_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
)

const testALPN = "quicconn-stream-test"

// testTimeout bounds every wait in these tests, so a bug fails a test instead
// of hanging the run.
const testTimeout = 10 * time.Second

var (
	certOnce sync.Once
	testCert tls.Certificate
	certErr  error
)

// selfSignedCert returns a throwaway ECDSA certificate for 127.0.0.1, made
// once per test binary.
func selfSignedCert(t testing.TB) tls.Certificate {
	t.Helper()
	certOnce.Do(func() {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			certErr = err
			return
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(1),
			Subject:      pkix.Name{CommonName: "quicconn stream test"},
			DNSNames:     []string{"localhost"},
			NotBefore:    time.Now().Add(-time.Hour),
			NotAfter:     time.Now().Add(time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			certErr = err
			return
		}
		testCert = tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	})
	if certErr != nil {
		t.Fatalf("generating certificate: %v", certErr)
	}
	return testCert
}

// newConnPair returns a client and a server quic-go connection joined over
// loopback UDP, both closed when the test ends. serverConf, which may be nil,
// configures the server side (for example a small receive window).
func newConnPair(t testing.TB, serverConf *quic.Config) (client, server *quic.Conn) {
	t.Helper()
	serverTLS := &tls.Config{
		Certificates: []tls.Certificate{selfSignedCert(t)},
		NextProtos:   []string{testALPN},
	}
	clientTLS := &tls.Config{
		InsecureSkipVerify: true, // tests only: the certificate is throwaway
		NextProtos:         []string{testALPN},
	}
	// Explicit transports, closed at cleanup: those of quic.ListenAddr and
	// quic.DialAddr keep their goroutines until the closed connections they
	// remember expire, which can outlast the leak check of TestMain.
	serverTr, clientTr := newTransport(t), newTransport(t)
	ln, err := serverTr.Listen(serverTLS, serverConf)
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	client, err = clientTr.Dial(ctx, ln.Addr(), clientTLS, nil)
	if err != nil {
		ln.Close()
		t.Fatalf("dial: %v", err)
	}
	server, err = ln.Accept(ctx)
	if err != nil {
		client.CloseWithError(0, "")
		ln.Close()
		t.Fatalf("accept: %v", err)
	}
	t.Cleanup(func() {
		client.CloseWithError(0, "")
		server.CloseWithError(0, "")
		ln.Close()
		clientTr.Close()
		serverTr.Close()
	})
	return client, server
}

// openBidi opens a bidirectional stream from client and accepts it on server.
// The opener sends one marker byte, which the acceptor consumes, so that both
// streams are established and hold no data when it returns.
func openBidi(t testing.TB, client, server *quic.Conn) (cs, ss *quic.Stream) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	cs, err := client.OpenStreamSync(ctx)
	if err != nil {
		t.Fatalf("open stream: %v", err)
	}
	if _, err := cs.Write([]byte{0}); err != nil {
		t.Fatalf("write marker: %v", err)
	}
	ss, err = server.AcceptStream(ctx)
	if err != nil {
		t.Fatalf("accept stream: %v", err)
	}
	if _, err := io.ReadFull(ss, make([]byte, 1)); err != nil {
		t.Fatalf("read marker: %v", err)
	}
	return cs, ss
}

// openUni opens a unidirectional stream from client and accepts it on
// server, with a marker byte as openBidi does.
func openUni(t testing.TB, client, server *quic.Conn) (cs *quic.SendStream, ss *quic.ReceiveStream) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	cs, err := client.OpenUniStreamSync(ctx)
	if err != nil {
		t.Fatalf("open uni stream: %v", err)
	}
	if _, err := cs.Write([]byte{0}); err != nil {
		t.Fatalf("write marker: %v", err)
	}
	ss, err = server.AcceptUniStream(ctx)
	if err != nil {
		t.Fatalf("accept uni stream: %v", err)
	}
	if _, err := io.ReadFull(ss, make([]byte, 1)); err != nil {
		t.Fatalf("read marker: %v", err)
	}
	return cs, ss
}

// smallWindow is a server configuration whose flow control lets a peer send
// only 16 KiB ahead of the reader, so writes block quickly.
func smallWindow() *quic.Config {
	return &quic.Config{
		InitialStreamReceiveWindow:     16 << 10,
		MaxStreamReceiveWindow:         16 << 10,
		InitialConnectionReceiveWindow: 64 << 10,
		MaxConnectionReceiveWindow:     64 << 10,
	}
}

// pattern returns n bytes of a repeating, position-dependent pattern.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}

// newTransport returns a quic-go Transport on a fresh loopback UDP socket,
// which the test closes at its end.
func newTransport(t testing.TB) *quic.Transport {
	t.Helper()
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	tr := &quic.Transport{Conn: udp}
	t.Cleanup(func() {
		tr.Close()
		udp.Close()
	})
	return tr
}
