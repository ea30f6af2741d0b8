package certverify

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"log/slog"
	"slices"
	"time"

	qerr "github.com/quicconn/quicconn/errors"
)

// Reasons reported in *qerr.CertificateError. They are part of the error
// message users see, so each names the rule that failed.
const (
	reasonMalformed          = "malformed certificate"
	reasonSignature          = "signature invalid"
	reasonExpired            = "certificate expired"
	reasonNotYetValid        = "certificate not yet valid"
	reasonChain              = "chain does not verify to roots"
	reasonName               = "certificate name mismatch"
	reasonExtMalformed       = "endorsement extension malformed"
	reasonEndorsementInvalid = "endorsement signature invalid"
	reasonHashNotTrusted     = "certificate hash not trusted"
	reasonSPKINotTrusted     = "SPKI hash not trusted"
	reasonNoEndorsement      = "no trusted endorsement"
	reasonNoCertificate      = "no certificate presented"
	reasonNoTrust            = "no trust configured: pin peers with TrustHashes, TrustSPKIs or TrustPubKeys, set Roots, or set AcceptUnpinned"
)

// tlsPeerUsages are the extended key usages VerifyCert accepts from a
// CA-issued certificate when it cannot know which side of a connection the
// peer was on: either TLS role will do, but not, say, a code-signing
// certificate from the same CA.
var tlsPeerUsages = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}

// VerifyCert checks a peer's DER leaf certificate against the credential's
// policy and returns nil if the peer is trusted. Every failure is a
// *qerr.CertificateError (it matches qerr.ErrBadCertificate) whose Reason
// names the rule that failed:
//
//   - the certificate must parse ("malformed certificate");
//   - now must be within its validity dates ("certificate expired",
//     "certificate not yet valid"), self-signed or not;
//   - without Roots, its signature must verify with its own public key
//     ("signature invalid"); with Roots, it must chain to them ("chain does
//     not verify to roots") — with no intermediates, since VerifyCert sees
//     only the leaf (the TLS configs pass the ones the peer presents), and
//     for server or client authentication;
//   - its endorsement extension, if any, must be well formed and every
//     endorsement must verify ("endorsement extension malformed",
//     "endorsement signature invalid"): a certificate carrying a forged
//     endorsement is refused whatever the pins say;
//   - then the trust decision, as VerifyTrust.
//
// With InsecureAcceptAnyPeer it checks nothing, logs a warning and returns
// nil.
func (c *Credential) VerifyCert(der []byte) error {
	if c.InsecureAcceptAnyPeer {
		c.warnSkipped("VerifyCert", HashOf(der))
		return nil
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return &qerr.CertificateError{Reason: reasonMalformed, Err: err}
	}
	return c.verifyLeaf("VerifyCert", leaf, nil, "", tlsPeerUsages)
}

// VerifyTrust applies the current trust decision to a peer leaf that has
// already passed the other checks of the policy (chain or signature, dates,
// endorsement signatures) in a completed handshake, which also proved that
// the peer holds the leaf's key: it is the re-check made of live
// connections after trust was removed (see OnTrustRemoved). The decision,
// on the snapshot of the pins in force when it is called:
//
//   - with InsecureAcceptAnyPeer: accepted, with a warning logged;
//   - when anything is pinned, the peer must match a pin: its certificate
//     hash, its SPKI hash, or a trusted key among its endorsements, else
//     "certificate hash not trusted", "SPKI hash not trusted", "no trusted
//     endorsement" or a combination naming each kind that is pinned;
//   - with no pins: accepted when Roots is set (the CA is the trust), or
//     when AcceptUnpinned is set (with a warning logged); otherwise
//     rejected with "no trust configured".
//
// VerifyTrust relies on what the handshake checked, endorsement signatures
// included, and checks none of it again, so that re-checking thousands of
// connections is cheap: it is not a substitute for VerifyCert on a
// certificate from elsewhere. Failures are *qerr.CertificateError with the
// leaf's Hash, as a handshake reports them. VerifyTrust takes no lock and,
// when the peer is trusted by a pin or by Roots, allocates nothing.
func (c *Credential) VerifyTrust(leaf *x509.Certificate) error {
	h := HashOf(leaf.Raw)
	if c.InsecureAcceptAnyPeer {
		c.warnSkipped("VerifyTrust", h)
		return nil
	}
	p := peer{hash: h, spki: leaf.RawSubjectPublicKeyInfo}
	if v, ok := endorsementValue(leaf); ok {
		entries, err := endorsementEntries(v)
		if err != nil {
			return &qerr.CertificateError{Reason: reasonExtMalformed, Hash: h, Err: err}
		}
		p.entries = entries
	}
	return c.decide("VerifyTrust", &p)
}

// VerifyHashAndPubKeys applies the trust decision to a certificate known
// only by its hash h and the keys that endorse it, which the caller must
// already have checked (PubKeysFromCert does), as it must have checked the
// certificate's chain or signature and dates: it neither parses a
// certificate nor checks a signature. The rule is VerifyTrust's, except
// that SPKI pins can never match, since the public key is not known:
//
//   - pins: h must be a trusted hash, or one of keys a trusted endorser;
//   - no pins: accepted with Roots or AcceptUnpinned, else "no trust
//     configured".
//
// Keys that are not 32 bytes long are never trusted. Failures are
// *qerr.CertificateError with Hash h. With InsecureAcceptAnyPeer it checks
// nothing, logs a warning and returns nil.
func (c *Credential) VerifyHashAndPubKeys(h CertHash, keys []ed25519.PublicKey) error {
	if c.InsecureAcceptAnyPeer {
		c.warnSkipped("VerifyHashAndPubKeys", h)
		return nil
	}
	return c.decide("VerifyHashAndPubKeys", &peer{hash: h, keys: keys})
}

// peer is what the trust decision knows of a peer certificate.
type peer struct {
	hash CertHash
	spki []byte // RawSubjectPublicKeyInfo; nil when unknown
	// entries are the endorsement entries, each entryTLVLen bytes (see
	// endorsementEntries), whose signatures have been verified.
	entries []byte
	keys    []ed25519.PublicKey // endorsing keys the caller checked
}

// endorsedBy reports whether one of p's endorsing keys is in keys.
func (p *peer) endorsedBy(keys map[[32]byte]struct{}) bool {
	for _, k := range p.keys {
		if len(k) != ed25519.PublicKeySize {
			continue
		}
		if _, ok := keys[[32]byte(k)]; ok {
			return true
		}
	}
	for e := p.entries; len(e) >= entryTLVLen; e = e[entryTLVLen:] {
		if _, ok := keys[[32]byte(e[2:2+ed25519.PublicKeySize])]; ok {
			return true
		}
	}
	return false
}

// decide is the trust decision on the current snapshot of the pins. op
// names the caller in warnings.
func (c *Credential) decide(op string, p *peer) error {
	t := c.live.trust.Load()
	if !t.pinned() {
		switch {
		case c.Roots != nil:
			return nil
		case c.AcceptUnpinned:
			c.warnUnpinned(op, p.hash)
			return nil
		}
		return &qerr.CertificateError{Reason: reasonNoTrust, Hash: p.hash}
	}
	if _, ok := t.hashes[p.hash]; ok {
		return nil
	}
	if len(t.spkis) > 0 && p.spki != nil {
		if _, ok := t.spkis[sha256.Sum256(p.spki)]; ok {
			return nil
		}
	}
	if len(t.keys) > 0 && p.endorsedBy(t.keys) {
		return nil
	}
	return &qerr.CertificateError{Reason: t.reason(), Hash: p.hash}
}

// reason names each kind of pin the peer failed to match.
func (t *trustSet) reason() string {
	var i int
	if len(t.hashes) > 0 {
		i |= 1
	}
	if len(t.spkis) > 0 {
		i |= 2
	}
	if len(t.keys) > 0 {
		i |= 4
	}
	return unmatchedReasons[i]
}

// unmatchedReasons is the failure reason for each combination of pinned
// kinds (bit 0: hashes, 1: SPKI hashes, 2: endorser keys).
var unmatchedReasons = [8]string{
	1: reasonHashNotTrusted,
	2: reasonSPKINotTrusted,
	3: reasonHashNotTrusted + " and " + reasonSPKINotTrusted,
	4: reasonNoEndorsement,
	5: reasonHashNotTrusted + " and " + reasonNoEndorsement,
	6: reasonSPKINotTrusted + " and " + reasonNoEndorsement,
	7: reasonHashNotTrusted + ", " + reasonSPKINotTrusted + " and " + reasonNoEndorsement,
}

// verifyLeaf runs the whole policy on a parsed leaf. intermediates are the
// rest of the chain the peer presented; serverName, when not empty and Roots
// is set, must be a name of the leaf; usages are the extended key usages a
// CA-issued leaf must allow. op names the caller in warnings.
func (c *Credential) verifyLeaf(op string, leaf *x509.Certificate, intermediates []*x509.Certificate, serverName string, usages []x509.ExtKeyUsage) error {
	h := HashOf(leaf.Raw)
	fail := func(reason string, err error) error {
		return &qerr.CertificateError{Reason: reason, Hash: h, Err: err}
	}

	// Dates first and for every leaf: a pinned self-signed certificate
	// expires like any other, and this check gives the precise reason
	// before a chain error would hide it.
	now := time.Now()
	if now.Before(leaf.NotBefore) {
		return fail(reasonNotYetValid, nil)
	}
	if now.After(leaf.NotAfter) {
		return fail(reasonExpired, nil)
	}

	if c.Roots != nil {
		pool := x509.NewCertPool()
		for _, ic := range intermediates {
			pool.AddCert(ic)
		}
		_, err := withoutEndorsementCritical(leaf).Verify(x509.VerifyOptions{
			Roots:         c.Roots,
			Intermediates: pool,
			DNSName:       serverName,
			CurrentTime:   now,
			KeyUsages:     usages,
		})
		if err != nil {
			if _, ok := errors.AsType[x509.HostnameError](err); ok {
				return fail(reasonName, err)
			}
			return fail(reasonChain, err)
		}
	} else if err := leaf.CheckSignature(leaf.SignatureAlgorithm, leaf.RawTBSCertificate, leaf.Signature); err != nil {
		// The leaf's own key, not CheckSignatureFrom(leaf): that demands a
		// CA certificate, and a node's self-signed leaf is not one.
		return fail(reasonSignature, err)
	}

	p := peer{hash: h, spki: leaf.RawSubjectPublicKeyInfo}
	if v, ok := endorsementValue(leaf); ok {
		entries, err := endorsementEntries(v)
		if err != nil {
			return fail(reasonExtMalformed, err)
		}
		// Every endorsement, not only a trusted one: a forged entry is
		// corruption or an attack, and fails the certificate.
		if err := verifyEntries(entries, leaf.RawSubjectPublicKeyInfo); err != nil {
			return fail(reasonEndorsementInvalid, err)
		}
		p.entries = entries
	}
	return c.decide(op, &p)
}

// withoutEndorsementCritical returns leaf, or a shallow copy of it without
// the endorsement extension in UnhandledCriticalExtensions: this package
// handles that extension, so a certificate marking it critical must not fail
// x509's chain check for it. The copy leaves the caller's certificate (which
// may belong to a tls.ConnectionState) untouched.
func withoutEndorsementCritical(leaf *x509.Certificate) *x509.Certificate {
	i := slices.IndexFunc(leaf.UnhandledCriticalExtensions, oidEndorsements.Equal)
	if i < 0 {
		return leaf
	}
	cp := *leaf
	cp.UnhandledCriticalExtensions = slices.Delete(slices.Clone(leaf.UnhandledCriticalExtensions), i, i+1)
	return &cp
}

// warnSkipped logs one skipped verification. It is called at every skip,
// not once, so that a log of a deployment shows each unverified peer.
func (c *Credential) warnSkipped(op string, h CertHash) {
	attrs := []slog.Attr{slog.String("op", op)}
	if h != (CertHash{}) {
		attrs = append(attrs, slog.String("sha256", h.String()))
	}
	c.logger().LogAttrs(context.Background(), slog.LevelWarn,
		"certverify: InsecureAcceptAnyPeer is set: peer certificate accepted without verification", attrs...)
}

// warnUnpinned logs one peer accepted under AcceptUnpinned, at every
// acceptance, as warnSkipped does.
func (c *Credential) warnUnpinned(op string, h CertHash) {
	c.logger().LogAttrs(context.Background(), slog.LevelWarn,
		"certverify: AcceptUnpinned is set and no peer is pinned: peer certificate accepted without a pin",
		slog.String("op", op), slog.String("sha256", h.String()))
}
