package certverify

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	qerr "github.com/quicconn/quicconn/errors"
)

// TestFailClosedMessage: a credential that pins nothing says so, and what
// to do about it, in the error a user sees.
func TestFailClosedMessage(t *testing.T) {
	t.Parallel()
	var c Credential
	peer := mint(t, certSpec{})
	err := c.VerifyCert(peer.der)
	if !errors.Is(err, qerr.ErrBadCertificate) {
		t.Fatalf("VerifyCert: %v, want ErrBadCertificate", err)
	}
	for _, s := range []string{"no trust configured", "TrustHashes", "TrustSPKIs", "TrustPubKeys", "Roots", "AcceptUnpinned", HashOf(peer.der).String()} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("message %q does not mention %q", err, s)
		}
	}
}

// TestAcceptUnpinnedWarnsEveryTime: accepting unpinned peers is logged at
// every acceptance, with the peer's hash, so that a deployment that forgot
// to pin shows each peer it let in.
func TestAcceptUnpinnedWarnsEveryTime(t *testing.T) {
	t.Parallel()
	rec := &logRecorder{}
	c := &Credential{AcceptUnpinned: true, Logger: slog.New(rec)}
	peer := mint(t, certSpec{})
	for range 3 {
		if err := c.VerifyCert(peer.der); err != nil {
			t.Fatal(err)
		}
	}
	const msg = "certverify: AcceptUnpinned is set and no peer is pinned: peer certificate accepted without a pin"
	if diff := cmp.Diff([]string{msg, msg, msg}, rec.warnings()); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
	rec.mu.Lock()
	var hashes []string
	for _, r := range rec.records {
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "sha256" {
				hashes = append(hashes, a.Value.String())
			}
			return true
		})
	}
	rec.mu.Unlock()
	h := HashOf(peer.der).String()
	if diff := cmp.Diff([]string{h, h, h}, hashes); diff != "" {
		t.Errorf("logged hashes (-want +got):\n%s", diff)
	}

	// A pin ends it: the credential is no longer unpinned.
	c.TrustHashes(HashOf([]byte("someone")))
	if err := c.VerifyCert(peer.der); !errors.Is(err, qerr.ErrBadCertificate) {
		t.Errorf("with a pin, an unpinned peer: %v, want ErrBadCertificate", err)
	}
	if got := len(rec.warnings()); got != 3 {
		t.Errorf("%d warnings, want still 3", got)
	}
}

// TestVerifyTrustAllocs: the re-check of a live connection allocates
// nothing when a pin trusts the peer, so that re-checking thousands of
// connections after a revocation is cheap.
func TestVerifyTrustAllocs(t *testing.T) {
	k := endorser(1)
	peer := mint(t, certSpec{endorsers: []ed25519.PrivateKey{endorser(2), k}})
	spki, err := SPKIHashOf(peer.der)
	if err != nil {
		t.Fatal(err)
	}
	for name, trust := range map[string]func(*Credential){
		"hash":     func(c *Credential) { c.TrustHashes(HashOf(peer.der)) },
		"SPKI":     func(c *Credential) { c.TrustSPKIs(spki) },
		"endorser": func(c *Credential) { c.TrustPubKeys(pub(k)) },
		"roots":    func(c *Credential) { c.Roots = x509NewPool(t) },
	} {
		t.Run(name, func(t *testing.T) {
			c := &Credential{}
			trust(c)
			c.TrustHashes(HashOf([]byte("another peer")))
			if name == "roots" {
				c.UntrustHashes(HashOf([]byte("another peer")))
			}
			if err := c.VerifyTrust(peer.cert); err != nil {
				t.Fatal(err)
			}
			if n := testing.AllocsPerRun(100, func() { _ = c.VerifyTrust(peer.cert) }); n != 0 {
				t.Errorf("VerifyTrust allocates %v times per call", n)
			}
		})
	}
}

// TestVerifyTrustIsTheTrustStepOnly: VerifyTrust decides on the pins
// alone and relies on the handshake for the rest. A leaf with a forged
// endorsement by a trusted key is refused by the whole policy (VerifyCert,
// and so every handshake), while VerifyTrust, told it passed, looks only at
// whom it names.
func TestVerifyTrustIsTheTrustStepOnly(t *testing.T) {
	t.Parallel()
	k := endorser(1)
	forged := mint(t, certSpec{endorsers: []ed25519.PrivateKey{k}, badEndorsement: true})
	c := &Credential{}
	c.TrustPubKeys(pub(k))
	if diff := cmp.Diff(certErr{Reason: reasonEndorsementInvalid, Hash: HashOf(forged.der)}, asCertErr(t, c.VerifyCert(forged.der))); diff != "" {
		t.Errorf("VerifyCert (-want +got):\n%s", diff)
	}
	if err := c.VerifyTrust(forged.cert); err != nil {
		t.Errorf("VerifyTrust: %v, want the decision on the pins alone", err)
	}
	c.UntrustPubKeys(pub(k))
	c.TrustPubKeys(pub(endorser(2)))
	if diff := cmp.Diff(certErr{Reason: reasonNoEndorsement, Hash: HashOf(forged.der)}, asCertErr(t, c.VerifyTrust(forged.cert))); diff != "" {
		t.Errorf("VerifyTrust after the endorser was untrusted (-want +got):\n%s", diff)
	}
}

func BenchmarkVerifyTrust(b *testing.B) {
	k := endorser(1)
	peer := mint(b, certSpec{endorsers: []ed25519.PrivateKey{k}})
	for _, bb := range []struct {
		name  string
		trust func(*Credential)
	}{
		{"hash", func(c *Credential) { c.TrustHashes(HashOf(peer.der)) }},
		{"endorser", func(c *Credential) { c.TrustPubKeys(pub(k)) }},
	} {
		b.Run(bb.name, func(b *testing.B) {
			c := &Credential{}
			bb.trust(c)
			b.ReportAllocs()
			for b.Loop() {
				if err := c.VerifyTrust(peer.cert); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestSetCertificateRejects(t *testing.T) {
	t.Parallel()
	good := mint(t, certSpec{})
	otherKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		cert   tls.Certificate
		reason string
	}{
		{"no chain", tls.Certificate{PrivateKey: good.key}, "has no certificate chain"},
		{"leaf does not parse", tls.Certificate{Certificate: [][]byte{[]byte("junk")}, PrivateKey: good.key}, "leaf does not parse"},
		{"no private key", tls.Certificate{Certificate: [][]byte{good.der}}, "has no private key"},
		{"key is not a signer", tls.Certificate{Certificate: [][]byte{good.der}, PrivateKey: "key"}, "is not a crypto.Signer"},
		{"key of another certificate", tls.Certificate{Certificate: [][]byte{good.der}, PrivateKey: otherKey}, "does not match"},
		{"key of another type", tls.Certificate{Certificate: [][]byte{good.der}, PrivateKey: edKey}, "does not match"},
		{"Leaf of another certificate", tls.Certificate{Certificate: [][]byte{good.der}, PrivateKey: otherKey, Leaf: mint(t, certSpec{key: otherKey}).cert}, "does not match"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := generate(t, []string{"node.test"})
			before := c.Identity()
			err := c.SetCertificate(tt.cert)
			ce, ok := errors.AsType[*qerr.ConfigError](err)
			if !ok || ce.Field != "Certificate" || !strings.Contains(ce.Reason, tt.reason) {
				t.Errorf("SetCertificate: %v, want a ConfigError on Certificate saying %q", err, tt.reason)
			}
			if c.Identity() != before {
				t.Error("a rejected certificate changed Identity")
			}
		})
	}
}

// tlsPeer is one live TLS connection over loopback TCP.
type tlsPeer struct {
	client, server *tls.Conn
}

// dialTLS makes a live TLS connection and returns it once both sides
// completed the handshake, or the handshake errors of both sides.
func dialTLS(t *testing.T, clientCfg, serverCfg *tls.Config) (*tlsPeer, error, error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	deadline := time.Now().Add(10 * time.Second)
	type result struct {
		conn *tls.Conn
		err  error
	}
	srv := make(chan result, 1)
	go func() {
		raw, err := ln.Accept()
		if err != nil {
			srv <- result{nil, err}
			return
		}
		raw.SetDeadline(deadline)
		s := tls.Server(raw, serverCfg)
		err = s.Handshake()
		if err != nil {
			s.Close()
			s = nil
		}
		srv <- result{s, err}
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	raw.SetDeadline(deadline)
	c := tls.Client(raw, clientCfg)
	clientErr := c.Handshake()
	s := <-srv
	if clientErr == nil && s.err != nil {
		// A TLS 1.3 client completes before the server judged it; the
		// server's alert arrives on the first read.
		_, clientErr = c.Read(make([]byte, 1))
	}
	if clientErr != nil || s.err != nil {
		c.Close()
		if s.conn != nil {
			s.conn.Close()
		}
		return nil, clientErr, s.err
	}
	p := &tlsPeer{client: c, server: s.conn}
	t.Cleanup(func() { p.client.Close(); p.server.Close() })
	return p, nil, nil
}

// echo checks that the connection still carries data both ways.
func (p *tlsPeer) echo(t *testing.T) {
	t.Helper()
	for _, dir := range []struct{ from, to *tls.Conn }{{p.client, p.server}, {p.server, p.client}} {
		if _, err := dir.from.Write([]byte("ping")); err != nil {
			t.Fatalf("write: %v", err)
		}
		buf := make([]byte, 4)
		if _, err := io.ReadFull(dir.to, buf); err != nil || string(buf) != "ping" {
			t.Fatalf("read %q, %v", buf, err)
		}
	}
}

// TestRotation rotates a server's certificate to one re-issued with the
// same key, as a renewal does: the live connection goes on, new handshakes
// present the new certificate, a client that pinned the key (SPKI) still
// connects and one that pinned the old certificate's hash does not. Then
// the client rotates too.
func TestRotation(t *testing.T) {
	t.Parallel()
	k1, k2 := endorser(1), endorser(2)
	old := mint(t, certSpec{name: "server.test", endorsers: []ed25519.PrivateKey{k1}})
	renewed := mint(t, certSpec{name: "server.test", key: old.key, endorsers: []ed25519.PrivateKey{k2}})
	server := &Credential{Certificate: old.tlsCert()}
	client := generate(t, []string{"client.test"})
	server.TrustSPKIs(mustSPKI(t, client.Certificate.Certificate[0]))

	bySPKI := client.Clone()
	bySPKI.TrustSPKIs(mustSPKI(t, old.der))
	byHash := client.Clone()
	byHash.TrustHashes(HashOf(old.der))
	serverCfg := server.ServerTLSConfig(nil) // one config across the rotation

	live, cerr, serr := dialTLS(t, byHash.ClientTLSConfig("", nil), serverCfg)
	if cerr != nil || serr != nil {
		t.Fatalf("before rotation: client %v, server %v", cerr, serr)
	}

	if err := server.SetCertificate(renewed.tlsCert()); err != nil {
		t.Fatal(err)
	}
	if got, want := server.Identity(), HashOf(renewed.der).String(); got != want {
		t.Errorf("Identity after rotation = %s, want %s", got, want)
	}
	if keys, err := server.MyCertPubKeys(); err != nil || len(keys) != 1 || !keys[0].Equal(pub(k2)) {
		t.Errorf("MyCertPubKeys after rotation = %x, %v; want the new endorser", keys, err)
	}
	live.echo(t) // the connection made with the old certificate goes on

	p, cerr, serr := dialTLS(t, bySPKI.ClientTLSConfig("", nil), serverCfg)
	if cerr != nil || serr != nil {
		t.Fatalf("SPKI-pinned client after rotation: client %v, server %v", cerr, serr)
	}
	if got := HashOf(p.client.ConnectionState().PeerCertificates[0].Raw); got != HashOf(renewed.der) {
		t.Errorf("new handshake saw %s, want the renewed certificate %s", got, HashOf(renewed.der))
	}

	_, cerr, _ = dialTLS(t, byHash.ClientTLSConfig("", nil), serverCfg)
	if diff := cmp.Diff(certErr{Reason: reasonHashNotTrusted, Hash: HashOf(renewed.der)}, asCertErr(t, cerr)); diff != "" {
		t.Errorf("hash-pinned client after rotation (-want +got):\n%s", diff)
	}

	// The client renews with its key too; the server pinned its SPKI.
	clientKey := client.Certificate.PrivateKey.(*ecdsa.PrivateKey)
	clientRenewed := mint(t, certSpec{name: "client.test", key: clientKey})
	clientCfg := bySPKI.ClientTLSConfig("", nil)
	if err := bySPKI.SetCertificate(clientRenewed.tlsCert()); err != nil {
		t.Fatal(err)
	}
	p, cerr, serr = dialTLS(t, clientCfg, serverCfg)
	if cerr != nil || serr != nil {
		t.Fatalf("after the client's rotation: client %v, server %v", cerr, serr)
	}
	if got := HashOf(p.server.ConnectionState().PeerCertificates[0].Raw); got != HashOf(clientRenewed.der) {
		t.Errorf("server saw client certificate %s, want the renewed one %s", got, HashOf(clientRenewed.der))
	}
}

// x509NewPool returns a pool holding one CA, for credentials that need
// Roots.
func x509NewPool(t testing.TB) *x509.CertPool {
	ca := mint(t, certSpec{name: "Test CA", isCA: true})
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

func mustSPKI(t testing.TB, der []byte) SPKIHash {
	t.Helper()
	h, err := SPKIHashOf(der)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestClone: a clone has the configuration, the certificate in force and
// the pins of its original, and from then on each changes alone.
func TestClone(t *testing.T) {
	t.Parallel()
	rec := &logRecorder{}
	orig := generate(t, []string{"node.test"})
	orig.AcceptUnpinned, orig.Logger, orig.ClientAuth = true, slog.New(rec), RequestClientCert
	orig.CurvePreferences = []tls.CurveID{tls.X25519}
	orig.Roots = x509NewPool(t)
	h1, h2, h3 := HashOf([]byte("1")), HashOf([]byte("2")), HashOf([]byte("3"))
	orig.TrustHashes(h1)
	rotated := mint(t, certSpec{})
	if err := orig.SetCertificate(rotated.tlsCert()); err != nil {
		t.Fatal(err)
	}
	var origRemovals int
	orig.OnTrustRemoved(func() { origRemovals++ })

	clone := orig.Clone()
	type config struct {
		Identity       string
		AcceptUnpinned bool
		Insecure       bool
		ClientAuth     ClientAuth
		Curves         []tls.CurveID
		SameRoots      bool
		SameLogger     bool
	}
	view := func(c *Credential) config {
		return config{c.Identity(), c.AcceptUnpinned, c.InsecureAcceptAnyPeer, c.ClientAuth, c.CurvePreferences, c.Roots == orig.Roots, c.Logger == orig.Logger}
	}
	if diff := cmp.Diff(view(orig), view(clone)); diff != "" {
		t.Errorf("clone's configuration (-orig +clone):\n%s", diff)
	}
	if clone.Identity() != HashOf(rotated.der).String() {
		t.Error("the clone does not present the rotated certificate")
	}
	if diff := cmp.Diff(viewOf(orig), viewOf(clone)); diff != "" {
		t.Errorf("clone's pins (-orig +clone):\n%s", diff)
	}

	clone.TrustHashes(h2)
	clone.UntrustHashes(h1)
	orig.TrustHashes(h3)
	if diff := cmp.Diff(trustView{Hashes: sortedHashes(h1, h3)}, viewOf(orig)); diff != "" {
		t.Errorf("original's pins after changes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(trustView{Hashes: []CertHash{h2}}, viewOf(clone)); diff != "" {
		t.Errorf("clone's pins after changes (-want +got):\n%s", diff)
	}
	if origRemovals != 0 {
		t.Errorf("the clone's removal ran the original's callback %d times", origRemovals)
	}
	clone.CurvePreferences[0] = tls.CurveP256
	if orig.CurvePreferences[0] != tls.X25519 {
		t.Error("the clone shares CurvePreferences with the original")
	}
	if err := clone.SetCertificate(mint(t, certSpec{}).tlsCert()); err != nil {
		t.Fatal(err)
	}
	if orig.Identity() != HashOf(rotated.der).String() {
		t.Error("rotating the clone rotated the original")
	}
}

// TestConcurrentTrustChanges runs 8 goroutines of 25 real TLS handshakes
// each while both credentials' trust and the server's certificate change
// every millisecond. The changes never touch the pins the peers are known
// by, so every trusted handshake must succeed, and every fifth, by a
// stranger, must fail; the race detector checks the rest.
func TestConcurrentTrustChanges(t *testing.T) {
	t.Parallel()
	const goroutines, perGoroutine = 8, 25
	serverKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serverCerts := []tls.Certificate{
		mint(t, certSpec{name: "server.test", key: serverKey}).tlsCert(),
		mint(t, certSpec{name: "server.test", key: serverKey}).tlsCert(),
	}
	curves := []tls.CurveID{tls.X25519} // cheaper handshakes, same policy
	server := &Credential{Certificate: serverCerts[0], CurvePreferences: curves}
	client := generate(t, []string{"client.test"}, endorser(1))
	client.CurvePreferences = curves
	stranger := generate(t, []string{"client.test"})
	stranger.CurvePreferences = curves
	server.TrustPubKeys(pub(endorser(1)))
	client.TrustSPKIs(mustSPKI(t, serverCerts[0].Certificate[0]))
	stranger.TrustSPKIs(mustSPKI(t, serverCerts[0].Certificate[0]))

	// A live connection's re-check, as conn makes it: the client is never
	// untrusted, so every re-check passes.
	var rechecks atomic.Int64
	var recheckErr atomic.Pointer[error]
	clientLeaf := client.Certificate.Leaf
	stop := server.OnTrustRemoved(func() {
		rechecks.Add(1)
		if err := server.VerifyTrust(clientLeaf); err != nil {
			recheckErr.CompareAndSwap(nil, &err)
		}
	})
	defer stop()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serverCfg := server.ServerTLSConfig([]string{"test"})
	var serverWG sync.WaitGroup
	var serverMu sync.Mutex
	var serverErrs []error
	serverWG.Go(func() {
		for {
			raw, err := ln.Accept()
			if err != nil {
				return // the listener was closed
			}
			serverWG.Go(func() {
				defer raw.Close()
				raw.SetDeadline(time.Now().Add(20 * time.Second))
				s := tls.Server(raw, serverCfg)
				if err := s.Handshake(); err != nil {
					serverMu.Lock()
					serverErrs = append(serverErrs, err)
					serverMu.Unlock()
					return
				}
				s.Write([]byte("ok"))
				s.Close()
			})
		}
	})

	// The churn: unrelated pins come and go on both sides, and the server
	// swaps between two certificates with the same key.
	done := make(chan struct{})
	var ticks atomic.Int64
	var churnWG sync.WaitGroup
	churnWG.Go(func() {
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			ticks.Add(1)
			h := HashOf([]byte{byte(i), byte(i >> 8)})
			s := SPKIHash(h)
			k := pub(endorser(byte(2 + i%8)))
			for _, c := range []*Credential{server, client} {
				c.TrustHashes(h)
				c.TrustSPKIs(s)
				c.TrustPubKeys(k)
				c.UntrustHashes(h)
				c.UntrustSPKIs(s)
				c.UntrustPubKeys(k)
			}
			if err := server.SetCertificate(serverCerts[i%2]); err != nil {
				t.Error(err)
				return
			}
			_ = server.Clone().Identity()
		}
	})

	var wg sync.WaitGroup
	var trusted, rejected atomic.Int64
	for g := range goroutines {
		wg.Go(func() {
			for i := range perGoroutine {
				cred, wantOK := client, true
				if i%5 == 4 {
					cred, wantOK = stranger, false
				}
				err := dialOnce(ln.Addr().String(), cred.ClientTLSConfig("", []string{"test"}))
				switch {
				case wantOK && err != nil:
					t.Errorf("goroutine %d, handshake %d: trusted client failed: %v", g, i, err)
				case wantOK:
					trusted.Add(1)
				case err == nil:
					t.Errorf("goroutine %d, handshake %d: the stranger got in", g, i)
				default:
					rejected.Add(1)
				}
			}
		})
	}
	wg.Wait()
	close(done)
	churnWG.Wait()
	ln.Close()
	serverWG.Wait()

	if got, want := trusted.Load(), int64(goroutines*perGoroutine*4/5); got != want {
		t.Errorf("%d trusted handshakes succeeded, want %d", got, want)
	}
	t.Logf("%d trusted and %d rejected handshakes during %d trust changes and %d re-checks", trusted.Load(), rejected.Load(), ticks.Load(), rechecks.Load())
	if ticks.Load() == 0 || rechecks.Load() == 0 {
		t.Errorf("trust changed %d times and live connections were re-checked %d times: the handshakes raced with nothing", ticks.Load(), rechecks.Load())
	}
	if p := recheckErr.Load(); p != nil {
		t.Errorf("a re-check of the trusted client failed: %v", *p)
	}
	serverMu.Lock()
	defer serverMu.Unlock()
	if int64(len(serverErrs)) != rejected.Load() {
		t.Errorf("server failed %d handshakes, the clients saw %d rejections", len(serverErrs), rejected.Load())
	}
	for _, err := range serverErrs {
		ce, ok := errors.AsType[*qerr.CertificateError](err)
		if !ok || ce.Hash != HashOf(stranger.Certificate.Certificate[0]) {
			t.Errorf("server error %v: want a CertificateError for the stranger", err)
		}
	}
}

// dialOnce makes one TLS connection and reads the server's "ok", which is
// where a TLS 1.3 client learns that the server rejected it.
func dialOnce(addr string, cfg *tls.Config) error {
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(20 * time.Second))
	c := tls.Client(raw, cfg)
	if err := c.Handshake(); err != nil {
		return err
	}
	buf := make([]byte, 2)
	if _, err := io.ReadFull(c, buf); err != nil {
		return err
	}
	return nil
}

// TestResumptionSeesCurrentTrust: a session ticket does not outlive trust.
// A resumed handshake runs the policy on the current pins, so a peer
// untrusted after its first connection cannot come back on its ticket, on
// either side.
func TestResumptionSeesCurrentTrust(t *testing.T) {
	t.Parallel()
	for _, untrusting := range []string{"server", "client"} {
		t.Run(untrusting+" untrusts", func(t *testing.T) {
			t.Parallel()
			server := generate(t, []string{"server.test"})
			client := generate(t, []string{"client.test"})
			serverHash, clientHash := HashOf(server.Certificate.Certificate[0]), HashOf(client.Certificate.Certificate[0])
			server.TrustHashes(clientHash)
			client.TrustHashes(serverHash)
			serverCfg := server.ServerTLSConfig(nil)
			// A server name, so the session cache finds the ticket again
			// though each connection has its own listener port.
			clientCfg := client.ClientTLSConfig("server.test", nil)
			clientCfg.ClientSessionCache = tls.NewLRUClientSessionCache(4)
			// Record whether the handshake the policy judged was resumed.
			var resumed atomic.Bool
			for _, cfg := range []*tls.Config{serverCfg, clientCfg} {
				verify := cfg.VerifyConnection
				cfg.VerifyConnection = func(cs tls.ConnectionState) error {
					resumed.Store(cs.DidResume)
					return verify(cs)
				}
			}

			for i, wantResumed := range []bool{false, true} {
				p, cerr, serr := dialTLS(t, clientCfg, serverCfg)
				if cerr != nil || serr != nil {
					t.Fatalf("connection %d: client %v, server %v", i, cerr, serr)
				}
				p.echo(t) // the client reads the ticket sent after the handshake
				if got := p.client.ConnectionState().DidResume; got != wantResumed {
					t.Fatalf("connection %d resumed: %v, want %v", i, got, wantResumed)
				}
			}

			var rejecting error
			want := certErr{Reason: reasonNoTrust}
			if untrusting == "server" {
				server.UntrustHashes(clientHash)
				want.Hash = clientHash
				_, _, rejecting = dialTLS(t, clientCfg, serverCfg)
			} else {
				client.UntrustHashes(serverHash)
				want.Hash = serverHash
				_, rejecting, _ = dialTLS(t, clientCfg, serverCfg)
			}
			if diff := cmp.Diff(want, asCertErr(t, rejecting)); diff != "" {
				t.Errorf("resumed handshake after the untrust (-want +got):\n%s", diff)
			}
			if !resumed.Load() {
				t.Error("the rejected handshake was not a resumption")
			}
		})
	}
}
