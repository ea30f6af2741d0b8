package certverify

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"testing"
	"time"

	qerr "github.com/quicconn/quicconn/errors"
)

// fuzzSeeds returns certificates worth mutating: plain, endorsed (one and
// two entries, so both length forms), with a broken endorsement, with a
// truncated extension, CA-issued, expired; plus truncations and garbage.
func fuzzSeeds(f *testing.F) [][]byte {
	k1, k2 := endorser(1), endorser(2)
	ca := mint(f, certSpec{name: "Test CA", isCA: true})
	now := time.Now()
	certs := [][]byte{
		generate(f, []string{"node.test"}).Certificate.Certificate[0],
		generate(f, []string{"node.test", "127.0.0.1"}, k1).Certificate.Certificate[0],
		generate(f, nil, k1, k2).Certificate.Certificate[0],
		mint(f, certSpec{endorsers: []ed25519.PrivateKey{k1}, badEndorsement: true}).der,
		mint(f, certSpec{extValue: truncatedExt(f, k1)}).der,
		mint(f, certSpec{extValue: []byte{0x30, 0x00}}).der,
		mint(f, certSpec{parent: &ca, endorsers: []ed25519.PrivateKey{k2}, critical: true}).der,
		mint(f, certSpec{notBefore: now.Add(-48 * time.Hour), notAfter: now.Add(-24 * time.Hour)}).der,
	}
	seeds := append([][]byte(nil), certs...)
	for _, c := range certs[:3] {
		seeds = append(seeds, c[:len(c)/2], c[:len(c)-1])
	}
	return append(seeds, nil, []byte("garbage"), []byte{0x30, 0x82, 0xff, 0xff})
}

// FuzzVerifyCert feeds arbitrary bytes to VerifyCert under a policy that
// uses both trust sets. It must never panic, every failure must be a
// *CertificateError, and an accepted certificate must parse.
func FuzzVerifyCert(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	c := &Credential{}
	c.TrustPubKeys(pub(endorser(1)))
	c.TrustHashes(HashOf([]byte("someone")))
	f.Fuzz(func(t *testing.T, der []byte) {
		err := c.VerifyCert(der)
		if err == nil {
			if _, perr := x509.ParseCertificate(der); perr != nil {
				t.Fatalf("accepted a certificate that does not parse: %v", perr)
			}
			return
		}
		if _, ok := errors.AsType[*qerr.CertificateError](err); !ok {
			t.Fatalf("error %v (%T) is not a *CertificateError", err, err)
		}
	})
}

// FuzzPubKeysFromCert feeds arbitrary bytes to PubKeysFromCert. It must
// never panic; every returned key must have a valid signature over the
// certificate's SubjectPublicKeyInfo, found by an independent reader
// (encoding/asn1); and where our strict reader accepts the extension,
// encoding/asn1 must read the same entries.
func FuzzPubKeysFromCert(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, der []byte) {
		keys, err := PubKeysFromCert(der)
		if err != nil {
			if keys != nil {
				t.Fatalf("keys %x returned with error %v", keys, err)
			}
			if _, ok := errors.AsType[*qerr.CertificateError](err); !ok {
				t.Fatalf("error %v (%T) is not a *CertificateError", err, err)
			}
			return
		}
		cert, perr := x509.ParseCertificate(der)
		if perr != nil {
			t.Fatalf("no error, but the certificate does not parse: %v", perr)
		}
		var entries [][]byte
		for _, ext := range cert.Extensions {
			if ext.Id.Equal(oidEndorsements) {
				rest, aerr := asn1.Unmarshal(ext.Value, &entries)
				if aerr != nil || len(rest) != 0 {
					t.Fatalf("accepted an extension encoding/asn1 rejects: %v, %d bytes left", aerr, len(rest))
				}
			}
		}
		if len(entries) != len(keys) {
			t.Fatalf("%d keys from %d entries", len(keys), len(entries))
		}
		for i, e := range entries {
			if len(e) != entryLen {
				t.Fatalf("entry %d is %d bytes", i, len(e))
			}
			if !keys[i].Equal(ed25519.PublicKey(e[:32])) {
				t.Fatalf("key %d is %x, the entry holds %x", i, keys[i], e[:32])
			}
			if !ed25519.Verify(keys[i], cert.RawSubjectPublicKeyInfo, e[32:]) {
				t.Fatalf("key %d returned but its signature does not verify", i)
			}
		}
	})
}

// FuzzParseEndorsements compares the strict extension reader with
// encoding/asn1 on raw extension values, where mutations land on the bytes
// that matter: both must agree on which values are a DER SEQUENCE OF
// 96-byte OCTET STRINGs, and on the entries.
func FuzzParseEndorsements(f *testing.F) {
	for _, ks := range [][]ed25519.PrivateKey{nil, {endorser(1)}, {endorser(1), endorser(2)}} {
		e, err := endorse([]byte("spki"), ks)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(e.Value)
		f.Add(e.Value[:len(e.Value)-1])
	}
	f.Add([]byte{0x30, 0x80, 0x00, 0x00})
	f.Fuzz(func(t *testing.T, v []byte) {
		ours, err := parseEndorsements(v)
		var theirs [][]byte
		rest, aerr := asn1.Unmarshal(v, &theirs)
		asn1OK := aerr == nil && len(rest) == 0
		for _, e := range theirs {
			asn1OK = asn1OK && len(e) == entryLen
		}
		if (err == nil) != asn1OK {
			t.Fatalf("parseEndorsements err %v, encoding/asn1 err %v with %d bytes left", err, aerr, len(rest))
		}
		if err == nil && len(ours) != len(theirs) {
			t.Fatalf("%d entries, encoding/asn1 read %d", len(ours), len(theirs))
		}
		for i := range ours {
			if string(ours[i]) != string(theirs[i]) {
				t.Fatalf("entry %d differs", i)
			}
		}
	})
}
