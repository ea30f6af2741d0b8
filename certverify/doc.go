// Package certverify is quicconn's identity model: a node's certificate and
// key, the rules by which it trusts peers, and the TLS 1.3 configurations
// that enforce those rules during the QUIC handshake. Its Credential is the
// NetCredential of the Connection API of a Rust wrapper over msquic, and
// certificates carry the same endorsement extension, so Go and Rust nodes
// pin and endorse each other.
//
// # Identity
//
// A node is its leaf certificate. Peers trust it in one of four ways, and a
// Credential may combine them:
//
//   - Pinning by certificate hash. A CertHash is the SHA-256 of the
//     certificate's DER; Identity returns a node's own, and TrustHashes
//     pins peers. No CA is involved: certificates are self-signed
//     (GenerateSelfSigned). A renewed certificate is a new identity.
//   - Pinning by key. An SPKIHash is the SHA-256 of the certificate's
//     SubjectPublicKeyInfo (SPKIHashOf); TrustSPKIs pins it, and the pin
//     survives the peer's renewing its certificate with the same key.
//   - Endorsement. An ed25519 key endorses a certificate by signing its
//     SubjectPublicKeyInfo; the signature travels inside the certificate.
//     TrustPubKeys trusts every certificate an endorser signed, so an
//     operator adds nodes without redistributing hashes.
//   - Roots. With Credential.Roots set, a peer's leaf must chain to one of
//     these CAs (instead of being self-signed), and a client checks the
//     server name against it.
//
// # Verification policy
//
// A peer's leaf must parse, be within its validity dates (self-signed ones
// included), and carry a valid signature: its own (self-signed) or a chain
// to Roots. An endorsement extension, if present, must be well formed and
// every endorsement must verify. Then the pins decide:
//
//	pins                 the peer is accepted when
//	some                 it matches one: its hash, its SPKI hash or one of
//	                     its endorsing keys is trusted
//	none, Roots set      always: the CA is the trust
//	none, no Roots       never ("no trust configured"), unless
//	                     AcceptUnpinned is set: then always, with a warning
//
// A credential fails closed: one that pins nothing and has no Roots
// rejects every peer, so a forgotten trust list is an error at the first
// handshake rather than a mesh open to anyone. AcceptUnpinned restores the
// accept-any-well-formed-peer behaviour of the Rust API and logs every peer
// it lets in. Each failure is a *errors.CertificateError (package
// github.com/quicconn/quicconn/errors) whose Reason names the rule that
// failed and whose Hash is the peer's CertHash; InsecureAcceptAnyPeer turns
// all of this off for tests and logs a warning at every verification it
// skips.
//
// # Trust is live
//
// The pins change while the mesh runs: TrustHashes, TrustSPKIs and
// TrustPubKeys admit peers, UntrustHashes, UntrustSPKIs and UntrustPubKeys
// remove them, SetCertificate rotates the node's own certificate, all from
// any goroutine while connections handshake. The pins live in an immutable
// snapshot that each handshake reads once, without a lock, and that a
// change replaces whole, so no handshake sees a change half-applied, and
// verification costs what it cost with fixed trust.
//
// A change applies to the handshakes that start after it, resumed ones
// included (the policy runs on every handshake). A change that removes
// trust also runs the callbacks registered with OnTrustRemoved; package
// conn registers one per connection, re-checks the peer with VerifyTrust
// and closes the connections whose peer no longer passes. SetCertificate
// leaves live connections alone: they go on with the certificate they were
// made with, while new handshakes present the new one.
//
// Clone copies a credential, pins included, into an independent one; a
// Credential itself must not be copied once used.
//
// # The endorsement extension
//
// OID 1.2.3.4.5.6, non-critical. Its value (the extnValue OCTET STRING's
// contents) is the DER encoding of
//
//	Endorsements ::= SEQUENCE OF OCTET STRING (SIZE (96))
//
// where each OCTET STRING is an ed25519 public key followed by that key's
// signature over the certificate's SubjectPublicKeyInfo DER (the
// RawSubjectPublicKeyInfo bytes; for a generated certificate,
// x509.MarshalPKIXPublicKey of its key). Byte by byte, for n endorsements:
//
//	offset        bytes  content
//	0             1      0x30                 SEQUENCE
//	1             1-4    L = 98·n             DER length: L if L < 128, else
//	                                          0x81 L, 0x82 L>>8 L, 0x83 ...
//	then n times:
//	+0            1      0x04                 OCTET STRING
//	+1            1      0x60                 length 96
//	+2            32     public key           ed25519, RFC 8032 encoding
//	+34           64     signature            Ed25519(key, SubjectPublicKeyInfo)
//
// Reading is strict: the SEQUENCE length must be minimal and cover exactly
// the rest of the value, and every entry must be exactly the 98 bytes above;
// truncation, trailing bytes, other tags or other sizes make the certificate
// malformed ("endorsement extension malformed"), and one signature that does
// not verify fails it ("endorsement signature invalid"). PubKeysFromCert
// returns the endorsing keys.
//
// # How conn uses it
//
// conn builds its quic-go TLS configuration from ClientTLSConfig (dialing)
// or ServerTLSConfig (listening). The policy runs in the configuration's
// VerifyConnection callback, so a rejected peer receives the TLS
// bad_certificate alert (QUIC CRYPTO_ERROR 0x12a) and the local Start or
// Accept error wraps the *errors.CertificateError. conn wraps that callback,
// calling ours first, to learn the peer's leaf as soon as it is verified,
// which is what Connection.ReceiveRemoteCertificate waits for; see
// ClientTLSConfig for the pattern and its one caveat. A certificate that
// crypto/tls itself cannot parse never reaches the callback: crypto/tls
// refuses it with the decode_error alert (CRYPTO_ERROR 0x132) and an error of
// its own, not a CertificateError. The configurations hand out the node's
// certificate through GetCertificate and GetClientCertificate, so each
// handshake presents the one in force when it runs.
//
// # Concurrency
//
// The trust methods, SetCertificate, Clone and every verification are safe
// for concurrent use. The exported fields of a Credential are
// configuration, read by every handshake: set them before first use.
package certverify
