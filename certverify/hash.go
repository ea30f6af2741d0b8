package certverify

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"fmt"

	qerr "github.com/quicconn/quicconn/errors"
)

// CertHash is the SHA-256 of a certificate's DER encoding: the identity a
// pinned peer is known by. Pinning the whole DER, not just the public key,
// means a re-issued certificate is a new identity, as in the Connection API
// of a Rust wrapper over msquic this library descends from, so hashes
// interoperate with it; pin an SPKIHash to survive re-issue instead.
type CertHash [32]byte

// HashOf returns the CertHash of a DER-encoded certificate. It hashes the
// bytes as given and does not parse them.
func HashOf(der []byte) CertHash { return sha256.Sum256(der) }

// String returns the hash as 64 lower-case hex digits, the form Identity
// returns and ParseCertHash accepts.
func (h CertHash) String() string { return hex.EncodeToString(h[:]) }

// ParseCertHash parses the 64 hex digits of a CertHash, in either case. It
// accepts nothing else (no prefix, separators or whitespace), so that a typo
// in a trust list is an error rather than a different identity.
func ParseCertHash(s string) (CertHash, error) {
	var h CertHash
	if len(s) != hex.EncodedLen(len(h)) {
		return CertHash{}, fmt.Errorf("certverify: certificate hash %q: want %d hex digits, got %d characters",
			s, hex.EncodedLen(len(h)), len(s))
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return CertHash{}, fmt.Errorf("certverify: certificate hash %q: %w", s, err)
	}
	return h, nil
}

// MarshalText encodes the hash as String does, so that trust lists can live
// in JSON, YAML or flag values.
func (h CertHash) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText decodes a hash with the rules of ParseCertHash.
func (h *CertHash) UnmarshalText(b []byte) error {
	v, err := ParseCertHash(string(b))
	if err != nil {
		return err
	}
	*h = v
	return nil
}

// SPKIHash is the SHA-256 of a certificate's SubjectPublicKeyInfo DER: the
// identity of its key rather than of the certificate. A node that renews
// its certificate with the same key keeps its SPKIHash (and changes its
// CertHash), so pinning by SPKIHash survives re-issue. It is the pin of
// HPKP's pin-sha256 and of Chromium's SPKI lists.
type SPKIHash [32]byte

// SPKIHashOf returns the SPKIHash of a DER-encoded certificate. Unlike
// HashOf it must parse the certificate to find its public key; a
// certificate that does not parse is a *errors.CertificateError with
// Reason "malformed certificate".
func SPKIHashOf(der []byte) (SPKIHash, error) {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return SPKIHash{}, &qerr.CertificateError{Reason: reasonMalformed, Err: err}
	}
	return sha256.Sum256(cert.RawSubjectPublicKeyInfo), nil
}

// String returns the hash in standard, padded base64 (44 characters), the
// form of HPKP pins and of `openssl pkey -pubin -outform der | openssl dgst
// -sha256 -binary | base64`.
func (h SPKIHash) String() string { return base64.StdEncoding.EncodeToString(h[:]) }

// ParseSPKIHash parses an SPKIHash written as String writes it (44
// characters of standard, padded base64) or as 64 hex digits in either
// case. It accepts nothing else (no "sha256/" prefix, no unpadded or
// URL-safe base64, no whitespace), so that a typo in a trust list is an
// error rather than a different key.
func ParseSPKIHash(s string) (SPKIHash, error) {
	var h SPKIHash
	switch len(s) {
	case hex.EncodedLen(len(h)):
		if _, err := hex.Decode(h[:], []byte(s)); err != nil {
			return SPKIHash{}, fmt.Errorf("certverify: SPKI hash %q: %w", s, err)
		}
		return h, nil
	case base64.StdEncoding.EncodedLen(len(h)):
		// Strict: the padding bits must be zero, so that one hash has one
		// spelling.
		// Decode needs room for what 44 characters without padding hold.
		var buf [33]byte
		n, err := base64.StdEncoding.Strict().Decode(buf[:], []byte(s))
		if err != nil {
			return SPKIHash{}, fmt.Errorf("certverify: SPKI hash %q: %w", s, err)
		}
		if n != len(h) {
			return SPKIHash{}, fmt.Errorf("certverify: SPKI hash %q: decodes to %d bytes, want %d", s, n, len(h))
		}
		copy(h[:], buf[:n])
		return h, nil
	}
	return SPKIHash{}, fmt.Errorf("certverify: SPKI hash %q: want %d base64 characters or %d hex digits, got %d characters",
		s, base64.StdEncoding.EncodedLen(len(h)), hex.EncodedLen(len(h)), len(s))
}

// MarshalText encodes the hash as String does, so that trust lists can live
// in JSON, YAML or flag values.
func (h SPKIHash) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText decodes a hash with the rules of ParseSPKIHash.
func (h *SPKIHash) UnmarshalText(b []byte) error {
	v, err := ParseSPKIHash(string(b))
	if err != nil {
		return err
	}
	*h = v
	return nil
}
