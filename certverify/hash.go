package certverify

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// CertHash is the SHA-256 of a certificate's DER encoding: the identity a
// pinned peer is known by. Pinning the whole DER, not just the public key,
// means a re-issued certificate is a new identity, exactly as in the seed
// system, so hashes interoperate with it.
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
