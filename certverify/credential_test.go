package certverify

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestGenerateSelfSigned(t *testing.T) {
	t.Parallel()
	before := time.Now()
	c := generate(t, []string{"node.test", "127.0.0.1", "other.test", "::1"}, endorser(1))
	c.TrustHashes(HashOf(c.Certificate.Certificate[0]))
	leaf, err := x509.ParseCertificate(c.Certificate.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	type view struct {
		CN        string
		DNS       []string
		IPs       []string
		Client    ClientAuth
		Curve     string
		SelfSig   bool
		Validates bool
	}
	got := view{
		CN:        leaf.Subject.CommonName,
		DNS:       leaf.DNSNames,
		Client:    c.ClientAuth,
		SelfSig:   leaf.CheckSignature(leaf.SignatureAlgorithm, leaf.RawTBSCertificate, leaf.Signature) == nil,
		Validates: c.VerifyCert(c.Certificate.Certificate[0]) == nil,
	}
	for _, ip := range leaf.IPAddresses {
		got.IPs = append(got.IPs, ip.String())
	}
	if k, ok := leaf.PublicKey.(*ecdsa.PublicKey); ok && k.Curve == elliptic.P256() {
		got.Curve = "P-256"
	}
	want := view{
		CN:        "node.test",
		DNS:       []string{"node.test", "other.test"},
		IPs:       []string{"127.0.0.1", "::1"},
		Client:    RequireClientCert,
		Curve:     "P-256",
		SelfSig:   true,
		Validates: true,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("certificate (-want +got):\n%s", diff)
	}
	if !leaf.NotBefore.Before(before) || leaf.NotAfter.Before(before.Add(300*24*time.Hour)) {
		t.Errorf("validity %v .. %v: want back-dated and about a year long", leaf.NotBefore, leaf.NotAfter)
	}
	if c.Certificate.Leaf == nil || c.Certificate.PrivateKey == nil {
		t.Error("tls.Certificate lacks its Leaf or PrivateKey")
	}
	if c.Identity() != HashOf(c.Certificate.Certificate[0]).String() {
		t.Errorf("Identity() = %q, not the hash of the leaf", c.Identity())
	}
	if other := generate(t, []string{"node.test"}); other.Identity() == c.Identity() {
		t.Error("two generated credentials share an identity")
	}
}

// TestGenerateSelfSignedNoSubjects checks that a node need not have a name:
// pinned identities are hashes.
func TestGenerateSelfSignedNoSubjects(t *testing.T) {
	t.Parallel()
	c := generate(t, nil)
	c.TrustHashes(HashOf(c.Certificate.Certificate[0]))
	if err := c.VerifyCert(c.Certificate.Certificate[0]); err != nil {
		t.Fatal(err)
	}
}

func TestNoCertificate(t *testing.T) {
	t.Parallel()
	var c Credential
	if id := c.Identity(); id != "" {
		t.Errorf("Identity() = %q, want empty", id)
	}
	if _, err := c.MyCertPubKeys(); !errors.Is(err, errNoCertificate) {
		t.Errorf("MyCertPubKeys: %v, want errNoCertificate", err)
	}
}

func TestLoadKeyPair(t *testing.T) {
	t.Parallel()
	src := generate(t, []string{"node.test"}, endorser(1))
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	keyDER, err := x509.MarshalPKCS8PrivateKey(src.Certificate.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, certFile, "CERTIFICATE", src.Certificate.Certificate[0])
	writePEM(t, keyFile, "PRIVATE KEY", keyDER)

	c, err := LoadKeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if c.ClientAuth != RequireClientCert || c.Identity() != src.Identity() {
		t.Errorf("loaded ClientAuth %v identity %s, want %v %s", c.ClientAuth, c.Identity(), RequireClientCert, src.Identity())
	}
	keys, err := c.MyCertPubKeys()
	if err != nil || len(keys) != 1 || !keys[0].Equal(pub(endorser(1))) {
		t.Errorf("MyCertPubKeys = %x, %v; want the endorser's key", keys, err)
	}

	if _, err := LoadKeyPair(filepath.Join(dir, "missing.pem"), keyFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v, want os.ErrNotExist", err)
	}
	if _, err := LoadKeyPair(certFile, certFile); err == nil {
		t.Error("a certificate as the key file was accepted")
	}
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestClientAuthString(t *testing.T) {
	t.Parallel()
	got := []string{RequireClientCert.String(), RequestClientCert.String(), NoClientCert.String(), ClientAuth(9).String()}
	want := []string{"RequireClientCert", "RequestClientCert", "NoClientCert", "ClientAuth(9)"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	var zero ClientAuth
	if zero != RequireClientCert {
		t.Error("the zero ClientAuth is not RequireClientCert")
	}
}
