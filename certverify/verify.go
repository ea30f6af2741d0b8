package certverify

import (
	"context"
	"crypto/ed25519"
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
	reasonNoEndorsement      = "no trusted endorsement"
	reasonNeither            = "certificate hash not trusted and no trusted endorsement"
	reasonNoCertificate      = "no certificate presented"
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
//     endorsement is refused whatever the trust sets say;
//   - then the trust sets decide, as VerifyHashAndPubKeys.
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
	return c.verifyLeaf(leaf, nil, "", tlsPeerUsages)
}

// VerifyHashAndPubKeys applies the trust sets to a certificate known by its
// hash h and the keys that endorse it, which the caller must already have
// checked (PubKeysFromCert does): it neither parses a certificate nor checks
// a signature. The rule:
//
//   - no trusted hashes and no trusted keys: accepted;
//   - trusted hashes only: h must be one ("certificate hash not trusted");
//   - trusted keys only: one of keys must be one ("no trusted endorsement");
//   - both: either suffices ("certificate hash not trusted and no trusted
//     endorsement").
//
// Empty sets count as absent, so a credential whose sets are empty trusts
// every peer whose certificate passes VerifyCert's other checks. Keys that
// are not 32 bytes long are never trusted. Failures are
// *qerr.CertificateError with Hash h. With InsecureAcceptAnyPeer it checks
// nothing, logs a warning and returns nil.
func (c *Credential) VerifyHashAndPubKeys(h CertHash, keys []ed25519.PublicKey) error {
	if c.InsecureAcceptAnyPeer {
		c.warnSkipped("VerifyHashAndPubKeys", h)
		return nil
	}
	return c.checkTrust(h, keys)
}

// checkTrust is the trust rule of VerifyHashAndPubKeys.
func (c *Credential) checkTrust(h CertHash, keys []ed25519.PublicKey) error {
	byHash, byKey := len(c.TrustedCertHashes) > 0, len(c.TrustedPubKeys) > 0
	if !byHash && !byKey {
		return nil
	}
	if byHash {
		if _, ok := c.TrustedCertHashes[h]; ok {
			return nil
		}
	}
	if byKey {
		for _, k := range keys {
			if len(k) != ed25519.PublicKeySize {
				continue
			}
			if _, ok := c.TrustedPubKeys[[32]byte(k)]; ok {
				return nil
			}
		}
	}
	reason := reasonNeither
	switch {
	case !byKey:
		reason = reasonHashNotTrusted
	case !byHash:
		reason = reasonNoEndorsement
	}
	return &qerr.CertificateError{Reason: reason, Hash: h}
}

// verifyLeaf runs the whole policy on a parsed leaf. intermediates are the
// rest of the chain the peer presented; serverName, when not empty and Roots
// is set, must be a name of the leaf; usages are the extended key usages a
// CA-issued leaf must allow.
func (c *Credential) verifyLeaf(leaf *x509.Certificate, intermediates []*x509.Certificate, serverName string, usages []x509.ExtKeyUsage) error {
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

	keys, err := endorsementKeys(leaf)
	if err != nil {
		return err
	}
	return c.checkTrust(h, keys)
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
