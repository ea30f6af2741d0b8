package quinn_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/quicconn/quicconn/certverify"
	"github.com/quicconn/quicconn/conn"
	qerr "github.com/quicconn/quicconn/errors"
)

// testTimeout bounds each connection's whole exchange, on both sides.
const testTimeout = 30 * time.Second

// config is quicconn's side of every test: the script's ALPN, datagrams on.
func config(t *testing.T) *conn.Configuration {
	t.Helper()
	cfg, err := conn.NewConfiguration([]string{alpn}, conn.Settings{DatagramReceiveEnabled: true})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// quiet keeps quicconn's Warn logs of the refusals this file provokes out
// of the test output.
var quiet = conn.WithLogger(slog.New(slog.DiscardHandler))

// pair is one quicconn connection to one quinn-peer process.
type pair struct {
	c    *conn.Connection // nil if the handshake failed before one existed
	peer *peer
	err  error // Start's or Accept's
}

// connect starts quinn-peer as a server (quinnServer) or a client with args
// and connects quicconn's side, made with cred, to it over loopback. The
// handshake's error is returned in the pair, not as a test failure.
func connect(ctx context.Context, t *testing.T, quinnServer bool, cred *certverify.Credential, args ...string) pair {
	t.Helper()
	reg := conn.NewRegistration("quinn-interop")
	t.Cleanup(func() { _ = reg.Close() })
	cfg := config(t)
	if quinnServer {
		p := startPeer(t, append([]string{"server", "--listen", "127.0.0.1:0"}, args...)...)
		addr, err := p.expect(ctx, "listening ")
		if err != nil {
			t.Fatal(err)
		}
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatal(err)
		}
		n, err := strconv.ParseUint(port, 10, 16)
		if err != nil {
			t.Fatal(err)
		}
		c, err := conn.New(reg, cred, quiet)
		if err != nil {
			t.Fatal(err)
		}
		return pair{c: c, peer: p, err: c.Start(ctx, cfg, host, uint16(n))}
	}
	ln, err := conn.Listen(reg, "127.0.0.1:0", cfg, cred, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close() // the accepted connection outlives it
	p := startPeer(t, append([]string{"client", "--connect", ln.Addr().String()}, args...)...)
	c, err := ln.Accept(ctx)
	if err != nil {
		return pair{peer: p, err: err}
	}
	return pair{c: c, peer: p, err: c.Accept(ctx)}
}

// goCred is quicconn's side: a certverify-generated certificate, endorsed
// by endorsers.
func goCred(t *testing.T, endorsers ...ed25519.PrivateKey) *certverify.Credential {
	t.Helper()
	cred, err := certverify.GenerateSelfSigned([]string{"localhost"}, endorsers)
	if err != nil {
		t.Fatal(err)
	}
	return cred
}

func sides() []struct {
	name        string
	quinnServer bool
} {
	return []struct {
		name        string
		quinnServer bool
	}{{"quinn server", true}, {"quinn client", false}}
}

// wantConnected checks what each side says of the other after a successful
// handshake: the certificate each verified and the ALPN.
func wantConnected(ctx context.Context, t *testing.T, p pair, cred *certverify.Credential, quinn creds) {
	t.Helper()
	if p.err != nil {
		t.Fatalf("handshake: %v", p.err)
	}
	if got := certverify.HashOf(p.c.RemoteCertificate().Raw).String(); got != quinn.hash {
		t.Errorf("quicconn verified certificate %s, want quinn's %s", got, quinn.hash)
	}
	if got := p.c.NegotiatedALPN(); got != alpn {
		t.Errorf("quicconn negotiated ALPN %q, want %q", got, alpn)
	}
	line, err := p.peer.expect(ctx, "connected ")
	if err != nil {
		t.Fatal(err)
	}
	if want := "peer-sha256=" + cred.Identity() + " alpn=" + alpn; line != want {
		t.Errorf("quinn: connected %s; want %s", line, want)
	}
}

// TestScript runs the script with each stack as server and as client, each
// driving, and each closing: streams both ways, messages both ways,
// datagrams, and application close codes and reason phrases both ways.
// Both sides pin the other's certificate hash.
func TestScript(t *testing.T) {
	peerBinary(t) // a build, if any, before the exchanges' time bounds start
	dir := t.TempDir()
	n := 0
	for _, side := range sides() {
		for _, goDrives := range []bool{true, false} {
			for _, driverCloses := range []bool{true, false} {
				n++
				code := uint64(0x1000 + n)
				driver, closer := "quicconn", "responder"
				if !goDrives {
					driver = "quinn"
				}
				if driverCloses {
					closer = "driver"
				}
				name := fmt.Sprintf("%s/%s drives/%s closes", side.name, driver, closer)
				t.Run(name, func(t *testing.T) {
					ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
					defer cancel()
					quinn := opensslCert(t, dir, fmt.Sprintf("quinn%d", n), endorsement{})
					cred := goCred(t)
					cred.TrustHashes(certverify.HashOf(quinn.der))

					// quicconn sends no reason phrase; quinn sends one.
					quinnCloses := goDrives != driverCloses
					reason := ""
					if quinnCloses {
						reason = "quinn closes " + strconv.FormatUint(code, 16)
					}
					role, quinnCloser := "respond", "responder"
					if !goDrives {
						role = "drive"
					}
					if driverCloses {
						quinnCloser = "driver"
					}
					p := connect(ctx, t, side.quinnServer, cred,
						"--cert", quinn.cert, "--key", quinn.key, "--trust-hash", cred.Identity(),
						"--role", role, "--closer", quinnCloser,
						"--close-code", strconv.FormatUint(code, 10), "--close-reason", reason)
					wantConnected(ctx, t, p, cred, quinn)

					start := time.Now()
					if goDrives {
						err := drive(ctx, p.c, closing{byDriver: driverCloses, code: code, reason: reason})
						if err != nil {
							t.Fatalf("quicconn driving: %v", err)
						}
					} else {
						if err := respond(ctx, p.c); err != nil {
							t.Fatalf("quicconn responding: %v", err)
						}
						if driverCloses {
							if err := wantPeerClose(p.c, code, reason); err != nil {
								t.Error(err)
							}
						}
					}
					if rc, err := p.peer.wait(ctx); err != nil || rc != 0 {
						t.Fatalf("quinn-peer exit %d (%v), want 0", rc, err)
					}
					t.Logf("script in %s", time.Since(start).Round(time.Millisecond))

					hexCode := fmt.Sprintf("0x%x", code)
					var want []string
					switch {
					case goDrives && driverCloses:
						want = []string{`closed by peer: application close code=` + hexCode + ` reason=""`}
					case goDrives:
						want = []string{`closing code=` + hexCode + ` reason="` + reason + `"`, "closed locally"}
					default:
						want = []string{
							"pass echo 1048576 bytes",
							"pass parallel-echo 8 streams of 65536 bytes",
							"pass messages 100 each way",
						}
						if driverCloses {
							want = append(want, `closed locally code=`+hexCode+` reason="`+reason+`"`)
						} else {
							want = append(want, `pass close application close code=`+hexCode+` reason=""`)
						}
					}
					for _, w := range want {
						if !p.peer.has(w) {
							t.Errorf("quinn did not print %q", w)
						}
					}
					if !goDrives {
						if line, err := p.peer.expect(ctx, "pass datagrams "); err != nil {
							t.Error(err)
						} else {
							t.Logf("quinn: datagrams %s", line)
						}
					}
				})
			}
		}
	}
}

// TestEndorsement: each side trusts the other only through an ed25519
// endorsement, quinn's made with openssl from certverify's documented
// layout and quicconn's by certverify.GenerateSelfSigned.
func TestEndorsement(t *testing.T) {
	peerBinary(t) // a build, if any, before the exchanges' time bounds start
	dir := t.TempDir()
	for i, side := range sides() {
		t.Run(side.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
			defer cancel()
			quinnEndorser, _ := newEndorser(t)
			goEndorser, goEndorserHex := newEndorser(t)
			quinn := opensslCert(t, dir, fmt.Sprintf("endorsed%d", i), endorsement{keys: []ed25519.PrivateKey{quinnEndorser}})
			keys, err := certverify.PubKeysFromCert(quinn.der)
			if err != nil || len(keys) != 1 || !keys[0].Equal(quinnEndorser.Public()) {
				t.Fatalf("certverify reads the openssl certificate's endorsers as %x (%v), want the one that signed", keys, err)
			}
			cred := goCred(t, goEndorser)
			cred.TrustPubKeys(quinnEndorser.Public().(ed25519.PublicKey))

			p := connect(ctx, t, side.quinnServer, cred,
				"--cert", quinn.cert, "--key", quinn.key, "--trust-key", goEndorserHex)
			wantConnected(ctx, t, p, cred, quinn)
			if err := drive(ctx, p.c, closing{code: 7, reason: "endorsed"}); err != nil {
				t.Fatal(err)
			}
			if rc, err := p.peer.wait(ctx); err != nil || rc != 0 {
				t.Fatalf("quinn-peer exit %d (%v), want 0", rc, err)
			}
		})
	}
}

// The OID of the endorsement extension.
var endorsementOID = asn1.ObjectIdentifier{1, 2, 3, 4, 5, 6}

// goCredCustom is a self-signed quicconn credential for "localhost", valid
// for an hour either side of now, whose certificate template edit may change
// (it gets the SubjectPublicKeyInfo, for endorsements): certificates that
// GenerateSelfSigned would never make.
func goCredCustom(t *testing.T, edit func(tmpl *x509.Certificate, spki []byte)) *certverify.Credential {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	spki, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "localhost"},
		DNSNames:              []string{"localhost"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	edit(tmpl, spki)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &certverify.Credential{
		Certificate: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf},
		ClientAuth:  certverify.RequireClientCert,
	}
}

// withEndorsement makes goCredCustom add an endorsement extension whose
// value is made from the SPKI by value.
func withEndorsement(value func(spki []byte) []byte) func(*x509.Certificate, []byte) {
	return func(tmpl *x509.Certificate, spki []byte) {
		tmpl.ExtraExtensions = []pkix.Extension{{Id: endorsementOID, Value: value(spki)}}
	}
}

// flipSignature spoils the first entry's signature.
func flipSignature(entries [][]byte) [][]byte {
	entries[0][40] ^= 1
	return entries
}

// shorten drops the last byte of the first entry: 95 bytes, not 96.
func shorten(entries [][]byte) [][]byte {
	entries[0] = entries[0][:95]
	return entries
}

// Codes a refused handshake ends with on the wire: QUIC CRYPTO_ERROR for a
// TLS alert (0x100 + alert), and quinn's own substitute.
const (
	cryptoBadCertificate    = 0x12a // alert 42: how crypto/tls refuses
	cryptoHandshakeFailure  = 0x128 // alert 40: how rustls 0.20 refuses a client certificate
	transportApplicationErr = 0xc   // APPLICATION_ERROR: how quinn-proto 0.9 sends its own alert as a client
)

// TestRefusals: every mismatch of pins and endorsements, each refused by
// the side that should refuse, with quinn as server and as client. The
// refusing side must name the rule that failed (quinn words them as
// certverify does); the refused side must see the handshake fail with the
// code the refusing stack sends.
func TestRefusals(t *testing.T) {
	peerBinary(t) // a build, if any, before the exchanges' time bounds start
	dir := t.TempDir()
	type setup struct {
		cred      *certverify.Credential
		quinn     creds
		quinnArgs []string
	}
	tests := []struct {
		name    string
		goSide  bool // quicconn refuses (else quinn does)
		reason  string
		prepare func(t *testing.T, name string) setup
	}{
		{
			name: "quicconn pins another hash", goSide: true, reason: "certificate hash not trusted",
			prepare: func(t *testing.T, name string) setup {
				q := opensslCert(t, dir, name, endorsement{})
				cred := goCred(t)
				cred.TrustHashes(otherHash(t))
				return setup{cred, q, []string{"--trust-hash", cred.Identity()}}
			},
		},
		{
			name: "quinn pins another hash", reason: "certificate hash not trusted",
			prepare: func(t *testing.T, name string) setup {
				q := opensslCert(t, dir, name, endorsement{})
				cred := goCred(t)
				cred.TrustHashes(certverify.HashOf(q.der))
				return setup{cred, q, []string{"--trust-hash", otherHash(t).String()}}
			},
		},
		{
			name: "quicconn trusts another endorser", goSide: true, reason: "no trusted endorsement",
			prepare: func(t *testing.T, name string) setup {
				k, _ := newEndorser(t)
				other, _ := newEndorser(t)
				q := opensslCert(t, dir, name, endorsement{keys: []ed25519.PrivateKey{k}})
				cred := goCred(t)
				cred.TrustPubKeys(other.Public().(ed25519.PublicKey))
				return setup{cred, q, []string{"--trust-hash", cred.Identity()}}
			},
		},
		{
			name: "quinn trusts another endorser", reason: "no trusted endorsement",
			prepare: func(t *testing.T, name string) setup {
				k, _ := newEndorser(t)
				_, otherHex := newEndorser(t)
				q := opensslCert(t, dir, name, endorsement{})
				cred := goCred(t, k)
				cred.TrustHashes(certverify.HashOf(q.der))
				return setup{cred, q, []string{"--trust-key", otherHex}}
			},
		},
		{
			name: "quinn's endorsement signature is bad", goSide: true, reason: "endorsement signature invalid",
			prepare: func(t *testing.T, name string) setup {
				k, _ := newEndorser(t)
				q := opensslCert(t, dir, name, endorsement{keys: []ed25519.PrivateKey{k}, tamper: flipSignature})
				cred := goCred(t)
				cred.TrustPubKeys(k.Public().(ed25519.PublicKey))
				return setup{cred, q, []string{"--trust-hash", cred.Identity()}}
			},
		},
		{
			name: "quicconn's endorsement signature is bad", reason: "endorsement signature invalid",
			prepare: func(t *testing.T, name string) setup {
				k, kHex := newEndorser(t)
				q := opensslCert(t, dir, name, endorsement{})
				cred := goCredCustom(t, withEndorsement(func(spki []byte) []byte {
					entry := append(append([]byte{}, k.Public().(ed25519.PublicKey)...), ed25519.Sign(k, spki)...)
					return endorsementValue(flipSignature([][]byte{entry}))
				}))
				cred.TrustHashes(certverify.HashOf(q.der))
				return setup{cred, q, []string{"--trust-key", kHex}}
			},
		},
		{
			name: "quinn's endorsement extension is malformed", goSide: true, reason: "endorsement extension malformed",
			prepare: func(t *testing.T, name string) setup {
				k, _ := newEndorser(t)
				q := opensslCert(t, dir, name, endorsement{keys: []ed25519.PrivateKey{k}, tamper: shorten})
				cred := goCred(t)
				cred.TrustPubKeys(k.Public().(ed25519.PublicKey))
				return setup{cred, q, []string{"--trust-hash", cred.Identity()}}
			},
		},
		{
			name: "quicconn's endorsement extension is malformed", reason: "endorsement extension malformed",
			prepare: func(t *testing.T, name string) setup {
				k, kHex := newEndorser(t)
				q := opensslCert(t, dir, name, endorsement{})
				cred := goCredCustom(t, withEndorsement(func(spki []byte) []byte {
					entry := append(append([]byte{}, k.Public().(ed25519.PublicKey)...), ed25519.Sign(k, spki)...)
					return endorsementValue(shorten([][]byte{entry}))
				}))
				cred.TrustHashes(certverify.HashOf(q.der))
				return setup{cred, q, []string{"--trust-key", kHex}}
			},
		},
		{
			name: "quicconn's certificate has expired", reason: "certificate expired",
			prepare: func(t *testing.T, name string) setup {
				q := opensslCert(t, dir, name, endorsement{})
				cred := goCredCustom(t, func(tmpl *x509.Certificate, _ []byte) {
					tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour)
				})
				cred.TrustHashes(certverify.HashOf(q.der))
				return setup{cred, q, []string{"--trust-hash", cred.Identity()}}
			},
		},
		{
			name: "quicconn's self-signature is bad", reason: "signature invalid",
			prepare: func(t *testing.T, name string) setup {
				q := opensslCert(t, dir, name, endorsement{})
				cred := goCredCustom(t, func(*x509.Certificate, []byte) {})
				// The signature is the DER's last field; crypto/tls sends
				// the certificate as it is.
				der := cred.Certificate.Certificate[0]
				der[len(der)-1] ^= 1
				cred.TrustHashes(certverify.HashOf(q.der))
				return setup{cred, q, []string{"--trust-hash", cred.Identity()}}
			},
		},
		{
			name: "quinn pins nothing", reason: "nothing pinned: no trusted hash and no trusted key",
			prepare: func(t *testing.T, name string) setup {
				q := opensslCert(t, dir, name, endorsement{})
				cred := goCred(t)
				cred.TrustHashes(certverify.HashOf(q.der))
				return setup{cred, q, nil}
			},
		},
	}
	n := 0
	for _, tt := range tests {
		for _, side := range sides() {
			n++
			t.Run(tt.name+"/"+side.name, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
				defer cancel()
				s := tt.prepare(t, fmt.Sprintf("refused%d", n))
				p := connect(ctx, t, side.quinnServer, s.cred,
					append([]string{"--cert", s.quinn.cert, "--key", s.quinn.key}, s.quinnArgs...)...)
				err := handshakeEnd(ctx, p)
				rc, werr := p.peer.wait(ctx)
				if werr != nil || rc != 1 {
					t.Errorf("quinn-peer exit %d (%v), want 1", rc, werr)
				}
				if tt.goSide {
					var ce *qerr.CertificateError
					if !errors.As(err, &ce) || ce.Reason != tt.reason || ce.Hash != certverify.HashOf(s.quinn.der) {
						t.Fatalf("quicconn: %v; want a certificate error %q for quinn's certificate", err, tt.reason)
					}
					// crypto/tls refuses with bad_certificate whichever end
					// it is; quinn's client may have seen its handshake
					// complete before the server's refusal came.
					want := fmt.Sprintf("transport close code=0x%x", cryptoBadCertificate)
					if !p.peer.contains(want) {
						t.Errorf("quinn did not see %q", want)
					}
					return
				}
				if !p.peer.hasReason("refused peer certificate: ", tt.reason) {
					t.Errorf("quinn did not refuse with %q", tt.reason)
				}
				// rustls refuses a client certificate with handshake_failure;
				// quinn-proto 0.9 sends its client's alerts as
				// APPLICATION_ERROR.
				want := uint64(cryptoHandshakeFailure)
				if !side.quinnServer {
					want = transportApplicationErr
				}
				var ce *qerr.ConnectionError
				if !errors.As(err, &ce) || ce.Reason != qerr.ShutdownByTransport || ce.Code != want {
					t.Fatalf("quicconn: %v; want the handshake closed by the transport with code 0x%x", err, want)
				}
			})
		}
	}
}

// handshakeEnd returns how a refused handshake ended for quicconn: Start's
// or Accept's error or, when quicconn's side of the handshake completed
// before the peer's refusal arrived, the connection's error once it ends.
func handshakeEnd(ctx context.Context, p pair) error {
	if p.err != nil || p.c == nil {
		return p.err
	}
	select {
	case <-p.c.WatchShutdown():
		return p.c.Err()
	case <-ctx.Done():
		return fmt.Errorf("the handshake succeeded and the connection stays up: %w", ctx.Err())
	}
}
