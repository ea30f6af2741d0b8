package certverify

import (
	"crypto/ed25519"
	"crypto/x509"
	"log/slog"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestVerifyPolicy covers every cell of the trust decision: no pins (with
// and without Roots and AcceptUnpinned), each kind of pin alone and in
// combination, each with a peer that is trusted and one that is not, through
// VerifyCert, VerifyTrust and VerifyHashAndPubKeys.
func TestVerifyPolicy(t *testing.T) {
	t.Parallel()
	keyA, keyB := endorser(1), endorser(2)
	endorsedA := mint(t, certSpec{endorsers: []ed25519.PrivateKey{keyA}})
	endorsedB := mint(t, certSpec{endorsers: []ed25519.PrivateKey{keyB}})
	endorsedBA := mint(t, certSpec{endorsers: []ed25519.PrivateKey{keyB, keyA}})
	plain := mint(t, certSpec{})
	pinned := mint(t, certSpec{})
	keyed := mint(t, certSpec{})
	reissued := mint(t, certSpec{key: keyed.key, name: "renewed.test"})
	ca := mint(t, certSpec{name: "Test CA", isCA: true})
	issued := mint(t, certSpec{parent: &ca})
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)

	type trust struct {
		hashes         []CertHash
		spkis          []SPKIHash
		keys           []ed25519.PublicKey
		roots          *x509.CertPool
		acceptUnpinned bool
	}
	spkiOf := func(m minted) SPKIHash {
		h, err := SPKIHashOf(m.der)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	none := trust{}
	unpinned := trust{acceptUnpinned: true}
	hashes := trust{hashes: []CertHash{HashOf(pinned.der)}}
	spkis := trust{spkis: []SPKIHash{spkiOf(keyed)}}
	keys := trust{keys: []ed25519.PublicKey{pub(keyA)}}
	hashKeys := trust{hashes: []CertHash{HashOf(pinned.der)}, keys: []ed25519.PublicKey{pub(keyA)}}
	all := trust{hashes: []CertHash{HashOf(pinned.der)}, spkis: []SPKIHash{spkiOf(keyed)}, keys: []ed25519.PublicKey{pub(keyA)}}

	const (
		noTrust = "no trust configured: pin peers with TrustHashes, TrustSPKIs or TrustPubKeys, set Roots, or set AcceptUnpinned"
		hashNo  = "certificate hash not trusted"
		spkiNo  = "SPKI hash not trusted"
		keyNo   = "no trusted endorsement"
	)
	tests := []struct {
		name   string
		trust  trust
		peer   minted
		reason string // "" for accepted
		// hashAndKeys, when set, is VerifyHashAndPubKeys's reason, which
		// differs where it cannot see the public key ("-": accepted).
		hashAndKeys string
		warns       int // AcceptUnpinned warnings per verification
	}{
		{name: "no pins reject a plain certificate", trust: none, peer: plain, reason: noTrust},
		{name: "no pins reject an endorsed certificate", trust: none, peer: endorsedB, reason: noTrust},
		{name: "AcceptUnpinned accepts a plain certificate, warning", trust: unpinned, peer: plain, warns: 1},
		{name: "AcceptUnpinned accepts an endorsed certificate, warning", trust: unpinned, peer: endorsedB, warns: 1},
		{name: "AcceptUnpinned has no effect once something is pinned", trust: trust{hashes: hashes.hashes, acceptUnpinned: true}, peer: plain, reason: hashNo},
		{name: "Roots without pins trust the CA", trust: trust{roots: roots}, peer: issued},
		{name: "Roots with pins still need a pin", trust: trust{roots: roots, hashes: hashes.hashes}, peer: issued, reason: hashNo},
		{name: "Roots with pins accept a pinned issued certificate", trust: trust{roots: roots, hashes: []CertHash{HashOf(issued.der)}}, peer: issued},
		{name: "hashes only accept a pinned hash", trust: hashes, peer: pinned},
		{name: "hashes only reject another hash", trust: hashes, peer: plain, reason: hashNo},
		{name: "hashes only ignore a trusted-looking endorsement", trust: hashes, peer: endorsedA, reason: hashNo},
		{name: "SPKI only accept the pinned key", trust: spkis, peer: keyed, hashAndKeys: spkiNo},
		{name: "SPKI only accept the pinned key re-issued", trust: spkis, peer: reissued, hashAndKeys: spkiNo},
		{name: "SPKI only reject another key", trust: spkis, peer: plain, reason: spkiNo},
		{name: "keys only accept a trusted endorser", trust: keys, peer: endorsedA},
		{name: "keys only accept a trusted endorser among others", trust: keys, peer: endorsedBA},
		{name: "keys only reject an untrusted endorser", trust: keys, peer: endorsedB, reason: keyNo},
		{name: "keys only reject a certificate without endorsements", trust: keys, peer: plain, reason: keyNo},
		{name: "keys only ignore the hash", trust: keys, peer: pinned, reason: keyNo},
		{name: "hashes and keys accept by hash", trust: hashKeys, peer: pinned},
		{name: "hashes and keys accept by endorsement", trust: hashKeys, peer: endorsedA},
		{name: "hashes and keys reject when neither holds", trust: hashKeys, peer: endorsedB, reason: hashNo + " and " + keyNo},
		{name: "all kinds accept by SPKI", trust: all, peer: reissued, hashAndKeys: hashNo + ", " + spkiNo + " and " + keyNo},
		{name: "all kinds name every kind when none holds", trust: all, peer: endorsedB, reason: hashNo + ", " + spkiNo + " and " + keyNo},
		{name: "hashes and SPKI name both", trust: trust{hashes: hashes.hashes, spkis: spkis.spkis}, peer: plain, reason: hashNo + " and " + spkiNo},
		{name: "SPKI and keys name both", trust: trust{spkis: spkis.spkis, keys: keys.keys}, peer: plain, reason: spkiNo + " and " + keyNo},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := &logRecorder{}
			c := &Credential{Roots: tt.trust.roots, AcceptUnpinned: tt.trust.acceptUnpinned, Logger: slog.New(rec)}
			c.TrustHashes(tt.trust.hashes...)
			c.TrustSPKIs(tt.trust.spkis...)
			c.TrustPubKeys(tt.trust.keys...)
			wantFor := func(reason string) certErr {
				if reason == "" || reason == "-" {
					return certErr{}
				}
				return certErr{Reason: reason, Hash: HashOf(tt.peer.der)}
			}
			want := wantFor(tt.reason)
			if diff := cmp.Diff(want, asCertErr(t, c.VerifyCert(tt.peer.der))); diff != "" {
				t.Errorf("VerifyCert (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(want, asCertErr(t, c.VerifyTrust(tt.peer.cert))); diff != "" {
				t.Errorf("VerifyTrust (-want +got):\n%s", diff)
			}

			// VerifyHashAndPubKeys is the same rule on already-checked keys,
			// blind to SPKI pins.
			ks, err := PubKeysFromCert(tt.peer.der)
			if err != nil {
				t.Fatal(err)
			}
			if tt.hashAndKeys != "" {
				want = wantFor(tt.hashAndKeys)
			}
			if diff := cmp.Diff(want, asCertErr(t, c.VerifyHashAndPubKeys(HashOf(tt.peer.der), ks))); diff != "" {
				t.Errorf("VerifyHashAndPubKeys (-want +got):\n%s", diff)
			}
			if got := len(rec.warnings()); got != 3*tt.warns {
				t.Errorf("%d warnings after three verifications, want %d", got, 3*tt.warns)
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
			if tt.roots == nil {
				c.TrustHashes(HashOf(tt.leaf.der))
			}
			want := certErr{}
			if tt.reason != "" {
				want = certErr{Reason: tt.reason, Hash: HashOf(tt.leaf.der)}
			}
			got := asCertErr(t, c.verifyLeaf("test", tt.leaf.cert, nil, tt.serverName, serverAuth))
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
