package certverify_test

import (
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"

	"github.com/quicconn/quicconn/certverify"
)

// The live-trust signatures DESIGN.md fixes: this file fails to compile
// when one drifts.
var (
	_ func([]byte) (certverify.SPKIHash, error)             = certverify.SPKIHashOf
	_ func(certverify.SPKIHash) string                      = certverify.SPKIHash.String
	_ func(string) (certverify.SPKIHash, error)             = certverify.ParseSPKIHash
	_ func(*certverify.Credential, ...certverify.CertHash)  = (*certverify.Credential).TrustHashes
	_ func(*certverify.Credential, ...certverify.CertHash)  = (*certverify.Credential).UntrustHashes
	_ func(*certverify.Credential, ...certverify.SPKIHash)  = (*certverify.Credential).TrustSPKIs
	_ func(*certverify.Credential, ...certverify.SPKIHash)  = (*certverify.Credential).UntrustSPKIs
	_ func(*certverify.Credential, ...ed25519.PublicKey)    = (*certverify.Credential).TrustPubKeys
	_ func(*certverify.Credential, ...ed25519.PublicKey)    = (*certverify.Credential).UntrustPubKeys
	_ func(*certverify.Credential, tls.Certificate) error   = (*certverify.Credential).SetCertificate
	_ func(*certverify.Credential) *certverify.Credential   = (*certverify.Credential).Clone
	_ func(*certverify.Credential, func()) func() bool      = (*certverify.Credential).OnTrustRemoved
	_ func(*certverify.Credential, *x509.Certificate) error = (*certverify.Credential).VerifyTrust
	_                                                       = certverify.Credential{AcceptUnpinned: true}
)
