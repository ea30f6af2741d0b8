package certverify

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	qerr "github.com/quicconn/quicconn/errors"
)

// handshakeResult is what each side of a TLS handshake saw.
type handshakeResult struct {
	clientErr, serverErr     error
	clientState, serverState tls.ConnectionState
}

// handshake runs a TLS handshake over loopback TCP (kernel buffers, so an
// alert never deadlocks against a flight still being written, as it can
// over net.Pipe). A TLS 1.3 client finishes before the server has judged
// its certificate, so the client then reads: a rejected client learns of
// the server's alert there, as a QUIC client learns of CRYPTO_ERROR.
func handshake(t *testing.T, clientCfg, serverCfg *tls.Config) handshakeResult {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	deadline := time.Now().Add(10 * time.Second)

	var res handshakeResult
	var wg sync.WaitGroup
	wg.Go(func() {
		raw, err := ln.Accept()
		if err != nil {
			res.serverErr = err
			return
		}
		defer raw.Close()
		raw.SetDeadline(deadline)
		s := tls.Server(raw, serverCfg)
		if res.serverErr = s.Handshake(); res.serverErr != nil {
			return
		}
		res.serverState = s.ConnectionState()
		_, res.serverErr = s.Write([]byte("ok"))
		s.Close()
	})
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.SetDeadline(deadline)
	c := tls.Client(raw, clientCfg)
	if res.clientErr = c.Handshake(); res.clientErr == nil {
		res.clientState = c.ConnectionState()
		buf := make([]byte, 2)
		if _, err := io.ReadFull(c, buf); err != nil {
			res.clientErr = err
		}
	}
	c.Close()
	wg.Wait()
	return res
}

// rejection says how one side of a failed handshake must have failed.
type rejection struct {
	reason string // a *qerr.CertificateError with this Reason
	alert  string // else an error mentioning this TLS alert
}

func (r rejection) check(t *testing.T, side string, err error) {
	t.Helper()
	switch {
	case r.reason != "":
		ce, ok := errors.AsType[*qerr.CertificateError](err)
		if !ok {
			t.Errorf("%s: error %v is not a *CertificateError", side, err)
		} else if ce.Reason != r.reason {
			t.Errorf("%s: reason %q, want %q", side, ce.Reason, r.reason)
		}
	case r.alert != "":
		if err == nil || !strings.Contains(err.Error(), r.alert) {
			t.Errorf("%s: error %v, want one with %q", side, err, r.alert)
		}
	case err != nil:
		t.Errorf("%s: unexpected error %v", side, err)
	}
}

func TestTLSHandshake(t *testing.T) {
	t.Parallel()
	keyA := endorser(1)
	server := generate(t, []string{"server.test", "127.0.0.1"})
	client := generate(t, []string{"client.test"}, keyA)
	stranger := generate(t, []string{"client.test"})
	noCert := &Credential{}

	ca := mint(t, certSpec{name: "Test CA", isCA: true})
	inter := mint(t, certSpec{name: "Intermediate CA", isCA: true, parent: &ca})
	caServer := &Credential{Certificate: mint(t, certSpec{name: "server.test", parent: &inter}).tlsCert(inter)}
	caServer.TrustHashes(HashOf(client.Certificate.Certificate[0]))
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)

	// pinnedBy returns a clone of c whose trust is set by f; a clone so
	// that parallel cases never share trust.
	pinnedBy := func(c *Credential, f func(*Credential)) *Credential {
		cp := c.Clone()
		f(cp)
		return cp
	}
	trusts := func(peer *Credential) func(*Credential) {
		return func(c *Credential) {
			h, err := ParseCertHash(peer.Identity())
			if err != nil {
				t.Fatal(err)
			}
			c.TrustHashes(h)
		}
	}
	spkiOf := func(peer *Credential) func(*Credential) {
		return func(c *Credential) {
			h, err := SPKIHashOf(peer.Certificate.Certificate[0])
			if err != nil {
				t.Fatal(err)
			}
			c.TrustSPKIs(h)
		}
	}
	withAuth := func(c *Credential, a ClientAuth) *Credential {
		cp := c.Clone()
		cp.ClientAuth = a
		return cp
	}
	withRoots := func(c *Credential) *Credential {
		cp := c.Clone()
		cp.Roots = roots
		return cp
	}
	acceptUnpinned := func(c *Credential) *Credential {
		cp := c.Clone()
		cp.AcceptUnpinned = true
		cp.Logger = slog.New(&logRecorder{})
		return cp
	}

	tests := []struct {
		name                   string
		client, server         *Credential
		serverName             string
		clientALPN, serverALPN []string
		wantClient, wantServer rejection
		wantALPN               string
		wantClientCert         bool // the server saw a client certificate
	}{
		{
			name:   "mutual auth by hash",
			client: pinnedBy(client, trusts(server)), server: pinnedBy(server, trusts(client)),
			wantClientCert: true,
		},
		{
			name:   "mutual auth by endorsement",
			client: pinnedBy(client, trusts(server)), server: pinnedBy(server, func(c *Credential) { c.TrustPubKeys(pub(keyA)) }),
			wantClientCert: true,
		},
		{
			name:   "mutual auth by SPKI hash",
			client: pinnedBy(client, spkiOf(server)), server: pinnedBy(server, spkiOf(client)),
			wantClientCert: true,
		},
		{
			name:   "server that pins nothing rejects the client",
			client: pinnedBy(client, trusts(server)), server: server,
			wantClient: rejection{alert: "bad certificate"},
			wantServer: rejection{reason: reasonNoTrust},
		},
		{
			name:   "client that pins nothing rejects the server",
			client: client, server: pinnedBy(server, trusts(client)),
			wantClient: rejection{reason: reasonNoTrust},
			wantServer: rejection{alert: "bad certificate"},
		},
		{
			name:   "AcceptUnpinned on both sides admits well-formed peers",
			client: acceptUnpinned(client), server: acceptUnpinned(server),
			wantClientCert: true,
		},
		{
			name:   "AcceptUnpinned has no effect once something is pinned",
			client: pinnedBy(acceptUnpinned(stranger), trusts(server)), server: pinnedBy(acceptUnpinned(server), trusts(client)),
			wantClient: rejection{alert: "bad certificate"},
			wantServer: rejection{reason: "certificate hash not trusted"},
		},
		{
			name:   "server rejects the client",
			client: pinnedBy(stranger, trusts(server)), server: pinnedBy(server, trusts(client)),
			wantClient: rejection{alert: "bad certificate"},
			wantServer: rejection{reason: "certificate hash not trusted"},
		},
		{
			name:   "server rejects an unendorsed client",
			client: pinnedBy(stranger, trusts(server)), server: pinnedBy(server, func(c *Credential) { c.TrustPubKeys(pub(keyA)) }),
			wantClient: rejection{alert: "bad certificate"},
			wantServer: rejection{reason: "no trusted endorsement"},
		},
		{
			name:   "client rejects the server",
			client: pinnedBy(client, trusts(stranger)), server: pinnedBy(server, trusts(client)),
			wantClient: rejection{reason: "certificate hash not trusted"},
			wantServer: rejection{alert: "bad certificate"},
		},
		{
			name:   "NoClientCert server accepts a client without a certificate",
			client: pinnedBy(noCert, trusts(server)), server: withAuth(pinnedBy(server, trusts(client)), NoClientCert),
		},
		{
			name:   "NoClientCert server does not ask for the certificate",
			client: pinnedBy(client, trusts(server)), server: withAuth(pinnedBy(server, trusts(stranger)), NoClientCert),
		},
		{
			name:   "RequireClientCert server rejects a client without a certificate",
			client: pinnedBy(noCert, trusts(server)), server: pinnedBy(server, trusts(client)),
			wantClient: rejection{alert: "certificate required"},
			wantServer: rejection{alert: "client didn't provide a certificate"},
		},
		{
			name:   "RequestClientCert server accepts a client without a certificate",
			client: pinnedBy(noCert, trusts(server)), server: withAuth(pinnedBy(server, trusts(client)), RequestClientCert),
		},
		{
			name:   "RequestClientCert server verifies a presented certificate",
			client: pinnedBy(stranger, trusts(server)), server: withAuth(pinnedBy(server, trusts(client)), RequestClientCert),
			wantClient: rejection{alert: "bad certificate"},
			wantServer: rejection{reason: "certificate hash not trusted"},
		},
		{
			name:   "ALPN negotiated",
			client: pinnedBy(client, trusts(server)), server: pinnedBy(server, trusts(client)),
			clientALPN: []string{"h3", "quicconn/1"}, serverALPN: []string{"quicconn/1"},
			wantALPN: "quicconn/1", wantClientCert: true,
		},
		{
			name:   "ALPN without overlap fails",
			client: pinnedBy(client, trusts(server)), server: pinnedBy(server, trusts(client)),
			clientALPN: []string{"h3"}, serverALPN: []string{"quicconn/1"},
			wantClient: rejection{alert: "no application protocol"},
			wantServer: rejection{alert: "unsupported application protocols"},
		},
		{
			name:   "server chained to roots through an intermediate",
			client: withRoots(client), server: caServer, serverName: "server.test",
			wantClientCert: true,
		},
		{
			name:   "server with the wrong name for roots",
			client: withRoots(client), server: caServer, serverName: "other.test",
			wantClient: rejection{reason: "certificate name mismatch"},
			wantServer: rejection{alert: "bad certificate"},
		},
		{
			name:   "self-signed server when the client uses roots",
			client: withRoots(client), server: server, serverName: "server.test",
			wantClient: rejection{reason: "chain does not verify to roots"},
			wantServer: rejection{alert: "bad certificate"},
		},
		{
			name:   "IP server name is not checked without roots",
			client: pinnedBy(client, trusts(server)), server: pinnedBy(server, trusts(client)), serverName: "127.0.0.2",
			wantClientCert: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := handshake(t, tt.client.ClientTLSConfig(tt.serverName, tt.clientALPN), tt.server.ServerTLSConfig(tt.serverALPN))
			tt.wantClient.check(t, "client", res.clientErr)
			tt.wantServer.check(t, "server", res.serverErr)
			if res.clientErr != nil || res.serverErr != nil {
				return
			}
			type view struct {
				Version                uint16
				ClientALPN, ServerALPN string
				ServerCert, ClientCert string
			}
			want := view{Version: tls.VersionTLS13, ClientALPN: tt.wantALPN, ServerALPN: tt.wantALPN, ServerCert: tt.server.Identity()}
			if tt.wantClientCert {
				want.ClientCert = tt.client.Identity()
			}
			got := view{
				Version:    res.clientState.Version,
				ClientALPN: res.clientState.NegotiatedProtocol,
				ServerALPN: res.serverState.NegotiatedProtocol,
				ServerCert: HashOf(res.clientState.PeerCertificates[0].Raw).String(),
			}
			if len(res.serverState.PeerCertificates) > 0 {
				got.ClientCert = HashOf(res.serverState.PeerCertificates[0].Raw).String()
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("connection (-want +got):\n%s", diff)
			}
		})
	}
}

// TestTLSConfigChaining shows how conn learns the verified peer: a
// VerifyConnection wrapped around ours runs only for peers that passed.
func TestTLSConfigChaining(t *testing.T) {
	t.Parallel()
	server := generate(t, []string{"server.test"})
	client := generate(t, []string{"client.test"})
	stranger := generate(t, []string{"client.test"})
	h, _ := ParseCertHash(client.Identity())
	server.TrustHashes(h)
	client.TrustHashes(HashOf(server.Certificate.Certificate[0]))
	stranger.TrustHashes(HashOf(server.Certificate.Certificate[0]))

	capture := func(cfg *tls.Config, seen *[]string) *tls.Config {
		verify := cfg.VerifyConnection
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if err := verify(cs); err != nil {
				return err
			}
			*seen = append(*seen, HashOf(cs.PeerCertificates[0].Raw).String())
			return nil
		}
		return cfg
	}

	var serverSaw, clientSaw []string
	res := handshake(t, capture(client.ClientTLSConfig("", nil), &clientSaw), capture(server.ServerTLSConfig(nil), &serverSaw))
	if res.clientErr != nil || res.serverErr != nil {
		t.Fatalf("handshake: client %v, server %v", res.clientErr, res.serverErr)
	}
	if diff := cmp.Diff([]string{client.Identity()}, serverSaw); diff != "" {
		t.Errorf("server captured (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{server.Identity()}, clientSaw); diff != "" {
		t.Errorf("client captured (-want +got):\n%s", diff)
	}

	serverSaw = nil
	res = handshake(t, stranger.ClientTLSConfig("", nil), capture(server.ServerTLSConfig(nil), &serverSaw))
	if res.serverErr == nil || len(serverSaw) != 0 {
		t.Errorf("rejected client: server err %v, captured %v; want an error and nothing captured", res.serverErr, serverSaw)
	}
}

// TestTLSConfigShape pins the settings the handshake tests rely on.
func TestTLSConfigShape(t *testing.T) {
	t.Parallel()
	c := generate(t, []string{"node.test"})
	alpn := []string{"a"}
	cc, sc := c.ClientTLSConfig("node.test", alpn), c.ServerTLSConfig(alpn)
	alpn[0] = "changed"
	type view struct {
		Min                  uint16
		ALPN                 []string
		Certs                int  // static certificates: none, the callbacks hand them out
		GetCert, GetClient   bool // the callbacks are set
		SkipVerify, Verifier bool
		ServerName           string
		ClientAuth           tls.ClientAuthType
	}
	got := []view{
		{cc.MinVersion, cc.NextProtos, len(cc.Certificates), cc.GetCertificate != nil, cc.GetClientCertificate != nil, cc.InsecureSkipVerify, cc.VerifyConnection != nil, cc.ServerName, cc.ClientAuth},
		{sc.MinVersion, sc.NextProtos, len(sc.Certificates), sc.GetCertificate != nil, sc.GetClientCertificate != nil, sc.InsecureSkipVerify, sc.VerifyConnection != nil, sc.ServerName, sc.ClientAuth},
	}
	want := []view{
		{tls.VersionTLS13, []string{"a"}, 0, true, true, true, true, "node.test", tls.NoClientCert},
		{tls.VersionTLS13, []string{"a"}, 0, true, true, false, true, "", tls.RequireAnyClientCert},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}

	for a, want := range map[ClientAuth]tls.ClientAuthType{
		RequireClientCert: tls.RequireAnyClientCert,
		RequestClientCert: tls.RequestClientCert,
		NoClientCert:      tls.NoClientCert,
		ClientAuth(42):    tls.RequireAnyClientCert, // unknown: the safe side
	} {
		cp := c.Clone()
		cp.ClientAuth = a
		if got := cp.ServerTLSConfig(nil).ClientAuth; got != want {
			t.Errorf("%v: tls.ClientAuth %v, want %v", a, got, want)
		}
	}
}

// TestTLSOnlyVersion13 checks that a peer limited to TLS 1.2 is refused.
func TestTLSOnlyVersion13(t *testing.T) {
	t.Parallel()
	c := generate(t, []string{"node.test"})
	c.TrustHashes(HashOf(c.Certificate.Certificate[0]))
	cc := c.ClientTLSConfig("", nil)
	cc.MinVersion, cc.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
	if res := handshake(t, cc, c.ServerTLSConfig(nil)); res.serverErr == nil || res.clientErr == nil {
		t.Errorf("TLS 1.2 client: client %v, server %v; want both to fail", res.clientErr, res.serverErr)
	}
}

// TestTLSInsecureAcceptAnyPeer checks that skipping verification in a
// handshake lets any peer in and logs a warning on each side.
func TestTLSInsecureAcceptAnyPeer(t *testing.T) {
	t.Parallel()
	rec := &logRecorder{}
	insecure := func(subject string) *Credential {
		c := generate(t, []string{subject})
		c.TrustHashes(HashOf([]byte("nobody")))
		c.InsecureAcceptAnyPeer = true
		c.Logger = slog.New(rec)
		return c
	}
	res := handshake(t, insecure("client.test").ClientTLSConfig("", nil), insecure("server.test").ServerTLSConfig(nil))
	if res.clientErr != nil || res.serverErr != nil {
		t.Fatalf("handshake: client %v, server %v", res.clientErr, res.serverErr)
	}
	if got := len(rec.warnings()); got != 2 {
		t.Errorf("logged %d warnings, want 2 (one per side)", got)
	}
}

// TestCurvePreferences: the configs offer exactly the credential's key
// exchanges, and a handshake uses one both share, in the server's order of
// preference (crypto/tls's server decides).
func TestCurvePreferences(t *testing.T) {
	server, client := generate(t, []string{"server"}), generate(t, []string{"client"})
	server.TrustHashes(HashOf(client.Certificate.Certificate[0]))
	client.TrustHashes(HashOf(server.Certificate.Certificate[0]))
	for _, tt := range []struct {
		name           string
		server, client []tls.CurveID
		want           tls.CurveID // 0: no common key exchange, the handshake fails
	}{
		{"both X25519", []tls.CurveID{tls.X25519}, []tls.CurveID{tls.X25519}, tls.X25519},
		{"server's order wins", []tls.CurveID{tls.X25519, tls.CurveP256}, []tls.CurveID{tls.CurveP256, tls.X25519}, tls.X25519},
		{"only P-256 shared", []tls.CurveID{tls.CurveP256}, []tls.CurveID{tls.X25519, tls.CurveP256}, tls.CurveP256},
		{"nothing shared", []tls.CurveID{tls.CurveP256}, []tls.CurveID{tls.X25519}, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			server.CurvePreferences, client.CurvePreferences = tt.server, tt.client
			res := handshake(t, client.ClientTLSConfig("server", []string{"x"}), server.ServerTLSConfig([]string{"x"}))
			if tt.want == 0 {
				if res.clientErr == nil || res.serverErr == nil {
					t.Fatalf("handshake without a common key exchange succeeded: %v / %v", res.clientErr, res.serverErr)
				}
				return
			}
			if res.clientErr != nil || res.serverErr != nil {
				t.Fatalf("handshake: client %v, server %v", res.clientErr, res.serverErr)
			}
			if got := res.clientState.CurveID; got != tt.want {
				t.Errorf("key exchange %v, want %v", got, tt.want)
			}
		})
	}
}
