package reliability_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/quicconn/quicconn/certverify"
	"github.com/quicconn/quicconn/conn"
	"github.com/quicconn/quicconn/conntest"
	qerr "github.com/quicconn/quicconn/errors"
	"github.com/quicconn/quicconn/stream"
)

// testCA is a certificate authority for the Roots policy.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newCA(t testing.TB, name string) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(365 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert, key}
}

func (ca *testCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// issue returns a credential whose leaf, for the pipe's addresses and
// "server.test", is signed by ca.
func (ca *testCA) issue(t testing.TB) *certverify.Credential {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "server.test"},
		DNSNames:     []string{"server.test"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv4(127, 0, 0, 2)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return &certverify.Credential{Certificate: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}}
}

func edKey(t testing.TB) ed25519.PrivateKey {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// policy makes a verifying credential (the side that may reject) and the
// peer's credential, trusted or not under that policy.
type policy struct {
	name  string
	setup func(t testing.TB, trusted bool) (verifier, peer *certverify.Credential)
}

var policies = []policy{
	{"hashes only", func(t testing.TB, trusted bool) (*certverify.Credential, *certverify.Credential) {
		v := mustCred(t, []string{"verifier.test"}, nil)
		p := mustCred(t, []string{"server.test", "127.0.0.2"}, nil)
		other := mustCred(t, []string{"other.test"}, nil)
		v.TrustHashes(certverify.HashOf(other.Certificate.Certificate[0]))
		if trusted {
			v.TrustHashes(certverify.HashOf(p.Certificate.Certificate[0]))
		}
		return v, p
	}},
	{"keys only (ed25519 endorsements)", func(t testing.TB, trusted bool) (*certverify.Credential, *certverify.Credential) {
		good, bad := edKey(t), edKey(t)
		v := mustCred(t, []string{"verifier.test"}, nil)
		v.TrustPubKeys(good.Public().(ed25519.PublicKey))
		endorser := bad
		if trusted {
			endorser = good
		}
		return v, mustCred(t, []string{"server.test", "127.0.0.2"}, []ed25519Key{endorser})
	}},
	{"hashes and keys", func(t testing.TB, trusted bool) (*certverify.Credential, *certverify.Credential) {
		good, bad := edKey(t), edKey(t)
		v := mustCred(t, []string{"verifier.test"}, nil)
		v.TrustPubKeys(good.Public().(ed25519.PublicKey))
		other := mustCred(t, []string{"other.test"}, nil)
		v.TrustHashes(certverify.HashOf(other.Certificate.Certificate[0]))
		endorser := bad
		if trusted {
			endorser = good
		}
		return v, mustCred(t, []string{"server.test", "127.0.0.2"}, []ed25519Key{endorser})
	}},
	{"Roots CA", func(t testing.TB, trusted bool) (*certverify.Credential, *certverify.Credential) {
		ca, rogue := newCA(t, "ca"), newCA(t, "rogue ca")
		v := mustCred(t, []string{"verifier.test"}, nil)
		v.Roots = ca.pool()
		if trusted {
			return v, ca.issue(t)
		}
		return v, rogue.issue(t)
	}},
}

// TestUntrustedCertificateNeverConnects runs every verification policy in
// both directions with an untrusted peer: the rejecting side never reaches
// Connected, reports ErrBadCertificate, and no application data crosses;
// the peer loses the connection with the bad_certificate alert (0x12a). A
// trusted peer under the same policy connects, so the rejection is the
// policy's doing.
func TestUntrustedCertificateNeverConnects(t *testing.T) {
	for _, pol := range policies {
		for _, rejecter := range []string{"server rejects client", "client rejects server"} {
			for _, trusted := range []bool{false, true} {
				name := pol.name + "/" + rejecter + "/untrusted"
				if trusted {
					name = pol.name + "/" + rejecter + "/trusted control"
				}
				t.Run(name, func(t *testing.T) {
					synctest.Test(t, func(t *testing.T) {
						verifier, peer := pol.setup(t, trusted)
						// The peer pins the verifier: only the verifier's
						// decision is under test.
						peer.TrustHashes(certverify.HashOf(verifier.Certificate.Certificate[0]))
						serverRejects := rejecter == "server rejects client"
						sc, cc := peer, verifier
						if serverRejects {
							sc, cc = verifier, peer
						}
						lg, logs := newCapture()
						var lnOpts, clOpts []conn.Option
						if serverRejects {
							lnOpts = []conn.Option{conn.WithLogger(lg)}
						} else {
							clOpts = []conn.Option{conn.WithLogger(lg)}
						}
						settings := conn.Settings{DatagramReceiveEnabled: true, HandshakeTimeout: 5 * time.Second}
						p := listenPipe(t, pairConfig{sc: sc, cc: cc, settings: settings, lnOpts: lnOpts, clOpts: clOpts,
							link: conntest.Link{Delay: 2 * time.Millisecond}})
						ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
						defer cancel()
						started := make(chan error, 1)
						go func() { started <- p.client.Start(ctx, p.cfg, "127.0.0.2", 1) }()
						server, err := p.ln.Accept(ctx)
						if err != nil {
							t.Fatalf("listener Accept: %v", err)
						}
						serr := server.Accept(ctx)
						cerr := <-started
						if trusted {
							if serr != nil || cerr != nil {
								t.Fatalf("trusted peer: server %v, client %v", serr, cerr)
							}
							p.server = server
							echoStream(t, p.client, p.server)
							return
						}

						rejecting, other, rerr := server, p.client, serr
						if !serverRejects {
							rejecting, other, rerr = p.client, server, cerr
						}
						if !errors.Is(rerr, qerr.ErrBadCertificate) {
							t.Errorf("rejecting side's error = %v, want ErrBadCertificate", rerr)
						}
						// The peer may think it connected (a client rejected by
						// the server, see Start), and tries to talk anyway.
						// A server peer (never Connected) waits in OpenOutboundStream
						// until its handshake fails, so it cannot send 0.5-RTT data.
						octx, ocancel := context.WithTimeout(ctx, 2*time.Second)
						if s, err := other.OpenOutboundStream(octx, stream.Bidirectional, true); err == nil {
							s.WriteChunks([][]byte{[]byte("application secret")}, true)
						} else if !serverRejects && !errors.Is(err, qerr.ErrConnectionLost) {
							t.Errorf("rejected server's OpenOutboundStream: %v, want ConnectionLost", err)
						}
						ocancel()
						other.SendDatagram([]byte("application datagram"))
						if s, err := rejecting.AcceptInboundStream(ctx); err == nil {
							b, _ := s.ReadChunk(ctx)
							t.Errorf("rejecting side was handed stream %d carrying %q", s.ID(), b)
						}
						if b, err := rejecting.ReceiveDatagram(ctx); err == nil {
							t.Errorf("rejecting side received datagram %q", b)
						}
						if s, err := rejecting.OpenOutboundStream(ctx, stream.Bidirectional, true); err == nil {
							t.Errorf("rejecting side opened stream %d", s.ID())
						}
						if c := rejecting.RemoteCertificate(); c != nil {
							t.Errorf("rejecting side stored the rejected certificate %q", c.Subject)
						}
						select {
						case <-other.WatchShutdown():
						case <-time.After(5 * time.Second):
							t.Fatalf("peer still %v 5s after its certificate was rejected", other.State())
						}
						if ce := connErr(t, "peer", other.Err()); ce.Reason != qerr.ShutdownByTransport || ce.Code != 0x12a {
							t.Errorf("peer: %v, want ShutdownByTransport 0x12a (bad_certificate)", other.Err())
						}
						<-rejecting.WatchShutdown()
						if n := logs.count(slog.LevelDebug, "connected"); n != 0 {
							t.Errorf("rejecting side logged %d connected events", n)
						}
						if n := logs.count(slog.LevelWarn, "certificate rejected"); n == 0 {
							t.Errorf("rejecting side did not log the rejection")
						}
					})
				})
			}
		}
	}
}

// echoStream checks that a stream round-trips between two connected sides.
func echoStream(t *testing.T, client, server *conn.Connection) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cs, err := client.OpenOutboundStream(ctx, stream.Bidirectional, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.WriteChunks([][]byte{[]byte("ping")}, true); err != nil {
		t.Fatal(err)
	}
	ss, err := server.AcceptInboundStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got, err := readAllBytes(ss)
	if err != nil || string(got) != "ping" {
		t.Fatalf("server read %q, %v", got, err)
	}
	if _, err := ss.WriteChunks([][]byte{[]byte("pong")}, true); err != nil {
		t.Fatal(err)
	}
	if got, err := readAllBytes(cs); err != nil || string(got) != "pong" {
		t.Fatalf("client read %q, %v", got, err)
	}
}

func readAllBytes(s *stream.Stream) ([]byte, error) {
	var out []byte
	for {
		b, err := s.ReadChunk(context.Background())
		out = append(out, b...)
		if err != nil {
			if err.Error() == "EOF" {
				return out, nil
			}
			return out, err
		}
	}
}

// TestInsecureAcceptAnyPeerWarnsAtEveryUse connects three times with
// InsecureAcceptAnyPeer on both sides: each side logs a warning for every
// verification it skipped.
func TestInsecureAcceptAnyPeerWarnsAtEveryUse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const conns = 3
		slogS, logsS := newCapture()
		slogC, logsC := newCapture()
		sc := mustCred(t, []string{"server.test"}, nil)
		cc := mustCred(t, []string{"client.test"}, nil)
		sc.InsecureAcceptAnyPeer, sc.Logger = true, slogS
		cc.InsecureAcceptAnyPeer, cc.Logger = true, slogC
		for i := range conns {
			p := newPair(t, pairConfig{sc: sc, cc: cc})
			echoStream(t, p.client, p.server)
			if w := logsS.count(slog.LevelWarn, "InsecureAcceptAnyPeer"); w < i+1 {
				t.Errorf("after %d connections the server logged %d InsecureAcceptAnyPeer warnings", i+1, w)
			}
			if w := logsC.count(slog.LevelWarn, "InsecureAcceptAnyPeer"); w < i+1 {
				t.Errorf("after %d connections the client logged %d InsecureAcceptAnyPeer warnings", i+1, w)
			}
		}
	})
}

// keyLogLines parses NSS key log lines into label → secret hex values.
func keyLogLines(b []byte) map[string][]string {
	m := make(map[string][]string)
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 {
			m[f[0]] = append(m[f[0]], f[2])
		}
	}
	return m
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu chanMutex
	b  bytes.Buffer
}

type chanMutex chan struct{}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu <- struct{}{}
	defer func() { <-s.mu }()
	return s.b.Write(p)
}

func (s *syncBuffer) Bytes() []byte {
	s.mu <- struct{}{}
	defer func() { <-s.mu }()
	return bytes.Clone(s.b.Bytes())
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{mu: make(chanMutex, 1)} }

// TestNoKeyMaterialInLogs captures every log record, at Debug level, of a
// full session (handshake, stream, datagram, rejection, shutdown) and checks
// that no private key, PEM block or TLS secret appears in it.
func TestNoKeyMaterialInLogs(t *testing.T) {
	logger, logs := newCapture()
	old := slog.Default()
	slog.SetDefault(logger)
	defer slog.SetDefault(old)

	keylog := newSyncBuffer()
	sc, cc := creds(t)
	sc.Logger, cc.Logger = logger, logger
	opts := []conn.Option{conn.WithLogger(logger), conn.WithKeyLog(keylog)}
	p := newPair(t, pairConfig{sc: sc, cc: cc, settings: conn.Settings{DatagramReceiveEnabled: true},
		lnOpts: opts, clOpts: opts, keepListener: true})
	echoStream(t, p.client, p.server)
	if err := p.client.SendDatagram([]byte("dgram")); err != nil {
		t.Fatal(err)
	}
	if _, err := p.server.ReceiveDatagram(ctxT(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	// A rejected client on the same listener, so the rejection path logs too.
	rogue := mustCred(t, []string{"rogue.test"}, nil)
	rogue.TrustHashes(certverify.HashOf(sc.Certificate.Certificate[0]))
	rogue.Logger = logger
	reg := conn.NewRegistration("rogue")
	defer reg.Close()
	ln, err := conn.Listen(reg, "127.0.0.1:0", p.cfg, sc, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept(context.Background())
			if err != nil {
				return
			}
			c.Accept(context.Background())
		}
	}()
	rcl, _ := conn.New(reg, rogue, conn.WithLogger(logger))
	if err := rcl.Start(ctxT(t, 5*time.Second), p.cfg, "127.0.0.1", uint16(ln.Addr().(*net.UDPAddr).Port)); err == nil {
		<-rcl.WatchShutdown()
	}
	p.client.ShutdownAndWait(ctxT(t, 5*time.Second), 0)
	<-p.server.WatchShutdown()
	ln.Close()
	reg.Close()

	secrets := keyLogLines(keylog.Bytes())
	if len(secrets["CLIENT_TRAFFIC_SECRET_0"]) == 0 {
		t.Fatalf("key log has no traffic secrets: %q", keylog.Bytes())
	}
	forbidden := []string{"PRIVATE KEY", "-----BEGIN", "CLIENT_TRAFFIC_SECRET", "SERVER_TRAFFIC_SECRET",
		"CLIENT_HANDSHAKE_TRAFFIC_SECRET", "SERVER_HANDSHAKE_TRAFFIC_SECRET", "EXPORTER_SECRET"}
	for _, c := range []*certverify.Credential{sc, cc, rogue} {
		d, err := c.Certificate.PrivateKey.(*ecdsa.PrivateKey).Bytes()
		if err != nil {
			t.Fatal(err)
		}
		forbidden = append(forbidden, hex.EncodeToString(d), strings.ToUpper(hex.EncodeToString(d)), string(d))
	}
	for _, vs := range secrets {
		forbidden = append(forbidden, vs...)
	}
	all := logs.all()
	if len(all) == 0 {
		t.Fatal("no log record captured: the check would be vacuous")
	}
	for _, r := range all {
		for _, f := range forbidden {
			if strings.Contains(r.Text, f) || strings.Contains(strings.ToLower(r.Text), strings.ToLower(f)) && len(f) > 40 {
				t.Errorf("log record %q contains key material %.20q…", r.Text, f)
			}
		}
	}
	t.Logf("%d log records checked against %d forbidden strings", len(all), len(forbidden))
}

// TestKeyLogOnlyWhenAsked: with WithKeyLog both sides write NSS key log
// lines; without it nothing is written anywhere, SSLKEYLOGFILE included.
func TestKeyLogOnlyWhenAsked(t *testing.T) {
	t.Run("WithKeyLog writes NSS lines", func(t *testing.T) {
		kc, ks := newSyncBuffer(), newSyncBuffer()
		p := newPair(t, pairConfig{clOpts: []conn.Option{conn.WithKeyLog(kc)}, lnOpts: []conn.Option{conn.WithKeyLog(ks)}})
		echoStream(t, p.client, p.server)
		for side, b := range map[string]*syncBuffer{"client": kc, "server": ks} {
			lines := keyLogLines(b.Bytes())
			for _, label := range []string{"CLIENT_HANDSHAKE_TRAFFIC_SECRET", "SERVER_HANDSHAKE_TRAFFIC_SECRET", "CLIENT_TRAFFIC_SECRET_0", "SERVER_TRAFFIC_SECRET_0"} {
				if len(lines[label]) != 1 {
					t.Errorf("%s key log: %d %s lines, want 1:\n%s", side, len(lines[label]), label, b.Bytes())
				}
			}
		}
	})
	t.Run("without WithKeyLog SSLKEYLOGFILE is ignored", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "keys.log")
		t.Setenv("SSLKEYLOGFILE", path)
		p := newPair(t, pairConfig{})
		echoStream(t, p.client, p.server)
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("SSLKEYLOGFILE %s was created (stat: %v)", path, err)
		}
	})
}
