package certverify

import (
	"crypto/ed25519"
	"crypto/x509"
	"log/slog"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestVerifyPolicy covers every cell of the trust table: no sets, hashes
// only, keys only and both, each with a peer that is trusted and one that
// is not.
func TestVerifyPolicy(t *testing.T) {
	t.Parallel()
	keyA, keyB := endorser(1), endorser(2)
	endorsedA := mint(t, certSpec{endorsers: []ed25519.PrivateKey{keyA}})
	endorsedB := mint(t, certSpec{endorsers: []ed25519.PrivateKey{keyB}})
	endorsedBA := mint(t, certSpec{endorsers: []ed25519.PrivateKey{keyB, keyA}})
	plain := mint(t, certSpec{})
	pinned := mint(t, certSpec{})

	type trust struct {
		hashes []CertHash
		keys   []ed25519.PublicKey
	}
	none := trust{}
	hashes := trust{hashes: []CertHash{HashOf(pinned.der)}}
	keys := trust{keys: []ed25519.PublicKey{pub(keyA)}}
	both := trust{hashes: []CertHash{HashOf(pinned.der)}, keys: []ed25519.PublicKey{pub(keyA)}}

	tests := []struct {
		name   string
		trust  trust
		peer   minted
		reason string // "" for accepted
	}{
		{"no trust sets accept a plain certificate", none, plain, ""},
		{"no trust sets accept an endorsed certificate", none, endorsedB, ""},
		{"hashes only accept a pinned hash", hashes, pinned, ""},
		{"hashes only reject another hash", hashes, plain, "certificate hash not trusted"},
		{"hashes only ignore a trusted-looking endorsement", hashes, endorsedA, "certificate hash not trusted"},
		{"keys only accept a trusted endorser", keys, endorsedA, ""},
		{"keys only accept a trusted endorser among others", keys, endorsedBA, ""},
		{"keys only reject an untrusted endorser", keys, endorsedB, "no trusted endorsement"},
		{"keys only reject a certificate without endorsements", keys, plain, "no trusted endorsement"},
		{"keys only ignore the hash", keys, pinned, "no trusted endorsement"},
		{"both accept by hash", both, pinned, ""},
		{"both accept by endorsement", both, endorsedA, ""},
		{"both reject when neither holds", both, endorsedB, "certificate hash not trusted and no trusted endorsement"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := &Credential{}
			if tt.trust.hashes != nil {
				c.TrustHashes(tt.trust.hashes...)
			}
			if tt.trust.keys != nil {
				c.TrustPubKeys(tt.trust.keys...)
			}
			want := certErr{}
			if tt.reason != "" {
				want = certErr{Reason: tt.reason, Hash: HashOf(tt.peer.der)}
			}
			got := asCertErr(t, c.VerifyCert(tt.peer.der))
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("VerifyCert (-want +got):\n%s", diff)
			}

			// VerifyHashAndPubKeys is the same rule on already-checked keys.
			ks, err := PubKeysFromCert(tt.peer.der)
			if err != nil {
				t.Fatal(err)
			}
			got = asCertErr(t, c.VerifyHashAndPubKeys(HashOf(tt.peer.der), ks))
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("VerifyHashAndPubKeys (-want +got):\n%s", diff)
			}
		})
	}
}

// TestVerifyRejects covers the checks before the trust sets: parsing,
// signatures, dates, endorsement integrity and chains. Each case says which
// trust it runs under, to show that trust never overrides these checks.
func TestVerifyRejects(t *testing.T) {
	t.Parallel()
	now := time.Now()
	keyA := endorser(1)
	valid := mint(t, certSpec{endorsers: []ed25519.PrivateKey{keyA}})
	other := mint(t, certSpec{})
	flipped := func(der []byte) []byte {
		b := append([]byte(nil), der...)
		b[len(b)-1] ^= 0x01 // inside the signature BIT STRING
		return b
	}
	ca := mint(t, certSpec{name: "Test CA", isCA: true})
	otherCA := mint(t, certSpec{name: "Other CA", isCA: true})
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)

	tests := []struct {
		name     string
		der      []byte
		pinSelf  bool // trust the certificate's own hash
		roots    *x509.CertPool
		reason   string
		zeroHash bool // the certificate cannot be read, so Hash is zero
	}{
		{name: "a valid endorsed certificate passes", der: valid.der, pinSelf: true},
		{name: "empty input", der: nil, reason: "malformed certificate", zeroHash: true},
		{name: "garbage", der: []byte("certainly not DER"), reason: "malformed certificate", zeroHash: true},
		{name: "truncated DER", der: valid.der[:len(valid.der)/2], reason: "malformed certificate", zeroHash: true},
		{name: "trailing bytes after DER", der: append(append([]byte(nil), valid.der...), 0), reason: "malformed certificate", zeroHash: true},
		{name: "tampered signature, even when pinned", der: flipped(valid.der), pinSelf: true, reason: "signature invalid"},
		{
			name: "not self-signed and no roots", pinSelf: true, reason: "signature invalid",
			der: mint(t, certSpec{parent: &other}).der,
		},
		{
			name: "tampered endorsement signature, even when pinned", pinSelf: true, reason: "endorsement signature invalid",
			der: mint(t, certSpec{endorsers: []ed25519.PrivateKey{keyA, endorser(2)}, badEndorsement: true}).der,
		},
		{
			name: "truncated endorsement extension", pinSelf: true, reason: "endorsement extension malformed",
			der: mint(t, certSpec{extValue: truncatedExt(t, keyA)}).der,
		},
		{
			name: "endorsement extension that is not a SEQUENCE", reason: "endorsement extension malformed",
			der: mint(t, certSpec{extValue: []byte{0x04, 0x00}}).der,
		},
		{
			name: "expired, even when pinned", pinSelf: true, reason: "certificate expired",
			der: mint(t, certSpec{notBefore: now.Add(-48 * time.Hour), notAfter: now.Add(-24 * time.Hour)}).der,
		},
		{
			name: "not yet valid, even when pinned", pinSelf: true, reason: "certificate not yet valid",
			der: mint(t, certSpec{notBefore: now.Add(24 * time.Hour), notAfter: now.Add(48 * time.Hour)}).der,
		},
		{name: "issued by a root", roots: roots, der: mint(t, certSpec{parent: &ca}).der},
		{
			name: "issued by a root, with a critical endorsement extension", roots: roots,
			der: mint(t, certSpec{parent: &ca, endorsers: []ed25519.PrivateKey{keyA}, critical: true}).der,
		},
		{
			name: "issued by an unknown CA", roots: roots, reason: "chain does not verify to roots",
			der: mint(t, certSpec{parent: &otherCA}).der,
		},
		{name: "self-signed when roots are set", roots: roots, pinSelf: true, reason: "chain does not verify to roots", der: valid.der},
		{
			name: "issued by a root for code signing only", roots: roots, reason: "chain does not verify to roots",
			der: mint(t, certSpec{parent: &ca, usages: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}}).der,
		},
		{
			name: "issued by a root but expired", roots: roots, reason: "certificate expired",
			der: mint(t, certSpec{parent: &ca, notBefore: now.Add(-48 * time.Hour), notAfter: now.Add(-24 * time.Hour)}).der,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := &Credential{Roots: tt.roots}
			if tt.pinSelf {
				c.TrustHashes(HashOf(tt.der))
			}
			want := certErr{}
			if tt.reason != "" {
				want.Reason = tt.reason
				if !tt.zeroHash {
					want.Hash = HashOf(tt.der)
				}
			}
			got := asCertErr(t, c.VerifyCert(tt.der))
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("VerifyCert (-want +got):\n%s", diff)
			}
		})
	}
}

// truncatedExt is a one-entry endorsement extension missing its last byte,
// with the SEQUENCE length still announcing the full entry.
func truncatedExt(t testing.TB, k ed25519.PrivateKey) []byte {
	t.Helper()
	e, err := endorse([]byte("spki"), []ed25519.PrivateKey{k})
	if err != nil {
		t.Fatal(err)
	}
	return e.Value[:len(e.Value)-1]
}

// TestVerifyServerName checks names against CA-issued leaves only, where
// the name is the identity; pinned self-signed leaves are their hash.
func TestVerifyServerName(t *testing.T) {
	t.Parallel()
	ca := mint(t, certSpec{name: "Test CA", isCA: true})
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	leaf := mint(t, certSpec{name: "node.test", parent: &ca})
	self := mint(t, certSpec{name: "node.test"})
	serverAuth := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}

	tests := []struct {
		name       string
		roots      *x509.CertPool
		leaf       minted
		serverName string
		reason     string
	}{
		{"matching name", roots, leaf, "node.test", ""},
		{"no name to check", roots, leaf, "", ""},
		{"wrong name", roots, leaf, "other.test", "certificate name mismatch"},
		{"names are not checked without roots", nil, self, "other.test", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := &Credential{Roots: tt.roots}
			want := certErr{}
			if tt.reason != "" {
				want = certErr{Reason: tt.reason, Hash: HashOf(tt.leaf.der)}
			}
			got := asCertErr(t, c.verifyLeaf(tt.leaf.cert, nil, tt.serverName, serverAuth))
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestVerifyHashAndPubKeysIgnoresBadKeys shows that a key of the wrong
// size can neither match nor crash the trust check.
func TestVerifyHashAndPubKeysIgnoresBadKeys(t *testing.T) {
	t.Parallel()
	c := &Credential{}
	c.TrustPubKeys(pub(endorser(1)))
	h := HashOf([]byte("x"))
	err := c.VerifyHashAndPubKeys(h, []ed25519.PublicKey{nil, pub(endorser(1))[:31]})
	if diff := cmp.Diff(certErr{Reason: "no trusted endorsement", Hash: h}, asCertErr(t, err)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestInsecureAcceptAnyPeerWarns checks that skipping verification is never
// silent: every skipped verification logs one warning.
func TestInsecureAcceptAnyPeerWarns(t *testing.T) {
	t.Parallel()
	rec := &logRecorder{}
	c := &Credential{InsecureAcceptAnyPeer: true, Logger: slog.New(rec)}
	c.TrustHashes(HashOf([]byte("someone else")))

	if err := c.VerifyCert([]byte("garbage")); err != nil {
		t.Errorf("VerifyCert: %v", err)
	}
	if err := c.VerifyCert(mint(t, certSpec{}).der); err != nil {
		t.Errorf("VerifyCert: %v", err)
	}
	if err := c.VerifyHashAndPubKeys(HashOf([]byte("y")), nil); err != nil {
		t.Errorf("VerifyHashAndPubKeys: %v", err)
	}
	const msg = "certverify: InsecureAcceptAnyPeer is set: peer certificate accepted without verification"
	if diff := cmp.Diff([]string{msg, msg, msg}, rec.warnings()); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
}

// TestInsecureAcceptAnyPeerDefaultLogger checks that a credential without a
// Logger still warns, through slog.Default. It replaces the default logger,
// so it does not run in parallel (parallel tests start after it ends).
func TestInsecureAcceptAnyPeerDefaultLogger(t *testing.T) {
	rec := &logRecorder{}
	old := slog.Default()
	slog.SetDefault(slog.New(rec))
	t.Cleanup(func() { slog.SetDefault(old) })

	c := &Credential{InsecureAcceptAnyPeer: true}
	if err := c.VerifyCert(nil); err != nil {
		t.Errorf("VerifyCert: %v", err)
	}
	if got := len(rec.warnings()); got != 1 {
		t.Errorf("logged %d warnings through slog.Default, want 1", got)
	}
}
