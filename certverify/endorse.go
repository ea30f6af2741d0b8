package certverify

import (
	"crypto/ed25519"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"

	qerr "github.com/quicconn/quicconn/errors"
)

// oidEndorsements identifies the endorsement extension. The value is the
// one of the Connection API of a Rust wrapper over msquic, so certificates
// made by either library carry endorsements the other can read.
var oidEndorsements = asn1.ObjectIdentifier{1, 2, 3, 4, 5, 6}

const (
	// entryLen is the size of one endorsement: key ‖ signature.
	entryLen = ed25519.PublicKeySize + ed25519.SignatureSize // 96
	// entryTLVLen is one DER OCTET STRING holding an entry: tag 0x04,
	// short-form length 0x60, then the 96 bytes.
	entryTLVLen = 2 + entryLen // 98

	tagOctetString = 0x04
	tagSequence    = 0x30
)

// encodeEndorsements builds the extension value for the given entries, each
// already key ‖ signature. encoding/asn1 emits DER, which is the layout the
// package documentation describes byte for byte.
func encodeEndorsements(entries [][]byte) ([]byte, error) {
	return asn1.Marshal(entries)
}

// endorse signs spki (a SubjectPublicKeyInfo DER) with every endorser and
// returns the extension carrying the endorsements. It is not critical: a
// peer that does not know endorsements can still use the certificate, as it
// would be pinned by hash.
func endorse(spki []byte, endorsers []ed25519.PrivateKey) (pkix.Extension, error) {
	entries := make([][]byte, 0, len(endorsers))
	for i, priv := range endorsers {
		// ed25519.Sign panics on a wrong-sized key; a caller's mistake must
		// be an error, not a crash.
		if len(priv) != ed25519.PrivateKeySize {
			return pkix.Extension{}, fmt.Errorf("endorser %d: ed25519 private key is %d bytes, want %d",
				i, len(priv), ed25519.PrivateKeySize)
		}
		e := make([]byte, 0, entryLen)
		e = append(e, priv.Public().(ed25519.PublicKey)...)
		e = append(e, ed25519.Sign(priv, spki)...)
		entries = append(entries, e)
	}
	v, err := encodeEndorsements(entries)
	if err != nil {
		return pkix.Extension{}, err
	}
	return pkix.Extension{Id: oidEndorsements, Critical: false, Value: v}, nil
}

// errExtMalformed is the cause inside a CertificateError whose Reason is
// reasonExtMalformed; the message says what was wrong.
func errExtMalformed(format string, args ...any) error {
	return fmt.Errorf("endorsement extension: "+format, args...)
}

// parseEndorsements decodes an extension value strictly, as
// endorsementEntries does, and returns the entries, each key ‖ signature.
func parseEndorsements(v []byte) ([][]byte, error) {
	body, err := endorsementEntries(v)
	if err != nil {
		return nil, err
	}
	entries := make([][]byte, 0, len(body)/entryTLVLen)
	for ; len(body) > 0; body = body[entryTLVLen:] {
		entries = append(entries, body[2:entryTLVLen])
	}
	return entries, nil
}

// endorsementEntries checks an extension value strictly — a DER SEQUENCE
// with a minimal length that covers exactly the rest of the value, holding
// only OCTET STRINGs of exactly 96 bytes — and returns the SEQUENCE's
// contents: the entries back to back, entryTLVLen bytes each, tag and
// length included. Anything else is an error, so one certificate cannot be
// read two ways by two parsers. It allocates nothing.
func endorsementEntries(v []byte) ([]byte, error) {
	if len(v) < 2 || v[0] != tagSequence {
		return nil, errExtMalformed("not a DER SEQUENCE")
	}
	n, hdr, err := derLength(v[1:])
	if err != nil {
		return nil, err
	}
	body := v[1+hdr:]
	switch {
	case n > len(body):
		return nil, errExtMalformed("truncated: SEQUENCE announces %d bytes, %d present", n, len(body))
	case n < len(body):
		return nil, errExtMalformed("%d bytes of trailing data", len(body)-n)
	}
	for i, e := 0, body; len(e) > 0; i, e = i+1, e[entryTLVLen:] {
		if len(e) < entryTLVLen || e[0] != tagOctetString || e[1] != entryLen {
			return nil, errExtMalformed("entry %d is not a %d-byte OCTET STRING", i, entryLen)
		}
	}
	return body, nil
}

// verifyEntries checks the signature of every entry of body (as
// endorsementEntries returns it) over spki.
func verifyEntries(body, spki []byte) error {
	for i, e := 0, body; len(e) > 0; i, e = i+1, e[entryTLVLen:] {
		pub, sig := ed25519.PublicKey(e[2:2+ed25519.PublicKeySize]), e[2+ed25519.PublicKeySize:entryTLVLen]
		if !ed25519.Verify(pub, spki, sig) {
			return fmt.Errorf("endorsement %d by key %x does not verify", i, []byte(pub))
		}
	}
	return nil
}

// endorsementValue returns the value of cert's endorsement extension and
// whether it has one.
func endorsementValue(cert *x509.Certificate) ([]byte, bool) {
	for _, ext := range cert.Extensions {
		// x509.ParseCertificate rejects duplicate extensions, so the first
		// match is the only one.
		if ext.Id.Equal(oidEndorsements) {
			return ext.Value, true
		}
	}
	return nil, false
}

// derLength decodes a DER length at the start of b and returns it with the
// number of bytes it took. It rejects the indefinite form and non-minimal
// encodings (DER allows one encoding of each length), and lengths that do not
// fit in 24 bits, far beyond any certificate.
func derLength(b []byte) (n, size int, err error) {
	if len(b) == 0 {
		return 0, 0, errExtMalformed("truncated length")
	}
	if b[0] < 0x80 {
		return int(b[0]), 1, nil
	}
	k := int(b[0] & 0x7f)
	if k == 0 || k > 3 {
		return 0, 0, errExtMalformed("unsupported length form 0x%02x", b[0])
	}
	if len(b) < 1+k {
		return 0, 0, errExtMalformed("truncated length")
	}
	if b[1] == 0 {
		return 0, 0, errExtMalformed("non-minimal length")
	}
	for _, c := range b[1 : 1+k] {
		n = n<<8 | int(c)
	}
	if n < 0x80 {
		return 0, 0, errExtMalformed("non-minimal length")
	}
	return n, 1 + k, nil
}

// endorsementKeys returns the ed25519 keys that endorse cert, after checking
// every endorsement's signature over cert's SubjectPublicKeyInfo. A
// certificate without the extension has no endorsements and no error. The
// returned keys are copies: they do not alias the certificate.
func endorsementKeys(cert *x509.Certificate) ([]ed25519.PublicKey, error) {
	v, ok := endorsementValue(cert)
	if !ok {
		return nil, nil
	}
	body, err := endorsementEntries(v)
	if err != nil {
		return nil, &qerr.CertificateError{Reason: reasonExtMalformed, Hash: HashOf(cert.Raw), Err: err}
	}
	if err := verifyEntries(body, cert.RawSubjectPublicKeyInfo); err != nil {
		return nil, &qerr.CertificateError{Reason: reasonEndorsementInvalid, Hash: HashOf(cert.Raw), Err: err}
	}
	keys := make([]ed25519.PublicKey, 0, len(body)/entryTLVLen)
	for e := body; len(e) > 0; e = e[entryTLVLen:] {
		keys = append(keys, append(ed25519.PublicKey(nil), e[2:2+ed25519.PublicKeySize]...))
	}
	return keys, nil
}

// PubKeysFromCert returns the ed25519 keys that endorse the DER certificate
// der, in the order the extension lists them. Every endorsement's signature
// must verify: one bad entry fails the whole certificate, because a forged
// endorsement is either corruption or an attack, and neither should be
// half-believed. A certificate without the extension yields no keys and no
// error.
//
// It does not check the certificate's own signature or dates (VerifyCert
// does); an endorsement binds a key to the certificate's public key, and is
// valid whoever signed the certificate. Failures are *qerr.CertificateError
// with Reason "malformed certificate", "endorsement extension malformed" or
// "endorsement signature invalid".
func PubKeysFromCert(der []byte) ([]ed25519.PublicKey, error) {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, &qerr.CertificateError{Reason: reasonMalformed, Err: err}
	}
	return endorsementKeys(cert)
}
