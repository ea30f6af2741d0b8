package certverify

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	qerr "github.com/quicconn/quicconn/errors"
)

// ClientAuth says whether a server asks connecting clients for a
// certificate, and whether it insists on one.
type ClientAuth int

const (
	// RequireClientCert: the client must present a certificate, and it must
	// pass the verification policy. It is the zero value, so a mesh of
	// mutually authenticated nodes is what a Credential gives by default.
	RequireClientCert ClientAuth = iota
	// RequestClientCert: the client is asked for a certificate; one that is
	// presented must pass the verification policy, but none is also fine.
	RequestClientCert
	// NoClientCert: the client is not asked for a certificate.
	NoClientCert
)

// String returns the constant's name, as logs and test failures want it.
func (a ClientAuth) String() string {
	switch a {
	case RequireClientCert:
		return "RequireClientCert"
	case RequestClientCert:
		return "RequestClientCert"
	case NoClientCert:
		return "NoClientCert"
	}
	return fmt.Sprintf("ClientAuth(%d)", int(a))
}

// Credential is a node's identity and its rules for trusting peers: the
// seed system's NetCredential. It holds this node's certificate and key, and
// the trust sets against which peer certificates are checked (see the
// package documentation for the policy).
//
// Configure a Credential, then use it. Its methods only read the trust sets
// and fields, so any number of goroutines and connections may verify with it
// at once; but nothing — TrustHashes, TrustPubKeys or direct writes to the
// fields — may change it while a connection or verification uses it, since
// the maps are not locked. To change trust while connections are live, copy
// the Credential, change the copy (give it new maps: a copy of the struct
// shares them) and use the copy for new connections.
type Credential struct {
	// Certificate is this node's chain (leaf first) and private key,
	// presented to peers.
	Certificate tls.Certificate
	// TrustedCertHashes pins peers by the SHA-256 of their leaf certificate.
	TrustedCertHashes map[CertHash]struct{}
	// TrustedPubKeys holds ed25519 keys whose endorsement makes a peer
	// certificate trusted.
	TrustedPubKeys map[[32]byte]struct{}
	// Roots, when set, replaces the self-signed check: a peer's leaf must
	// chain to one of these CAs, through the intermediates it presents.
	Roots *x509.CertPool
	// ClientAuth says what a server made from this credential asks of
	// clients.
	ClientAuth ClientAuth
	// InsecureAcceptAnyPeer skips verification entirely, for tests only.
	// Every skipped verification logs a warning to Logger, so the setting
	// cannot go unnoticed in a deployment.
	InsecureAcceptAnyPeer bool
	// Logger receives the InsecureAcceptAnyPeer warnings; nil means
	// slog.Default().
	Logger *slog.Logger
	// CurvePreferences, when set, are the key exchanges the TLS configs
	// offer and accept, in order of preference (tls.Config.CurvePreferences);
	// nil keeps crypto/tls's default, which since Go 1.24 puts the hybrid
	// post-quantum X25519MLKEM768 first. A mesh that pins
	// []tls.CurveID{tls.X25519} trades that protection for handshakes about
	// 45 % cheaper; both ends must share at least one.
	CurvePreferences []tls.CurveID
}

// validity of a generated certificate. The hour of back-dating tolerates
// peers whose clocks are behind ours; a year is long enough that a node
// restarted now and then never meets its own expiry.
const (
	backdate = time.Hour
	lifetime = 365 * 24 * time.Hour
)

// GenerateSelfSigned makes a credential with a fresh ECDSA P-256 key and a
// self-signed certificate valid from an hour ago for a year. Each subject
// becomes a subject alternative name — an IP address SAN if it parses as an
// IP, else a DNS name — and the first is also the common name. Each endorser
// signs the certificate's SubjectPublicKeyInfo, and the signatures go into
// the non-critical endorsement extension (see the package documentation), so
// that peers trusting an endorser's public key trust this certificate.
//
// The credential requires client certificates (RequireClientCert) and has
// empty trust sets, which accept any peer whose certificate is well formed:
// add trust with TrustHashes or TrustPubKeys before use.
func GenerateSelfSigned(subjects []string, endorsers []ed25519.PrivateKey) (*Credential, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, qerr.Op("generate certificate", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		// No SerialNumber: x509.CreateCertificate then picks a random one,
		// as RFC 5280 wants, so two certificates never collide.
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(lifetime),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	if len(subjects) > 0 {
		tmpl.Subject = pkix.Name{CommonName: subjects[0]}
	}
	for _, s := range subjects {
		if ip := net.ParseIP(s); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, s)
		}
	}
	if len(endorsers) > 0 {
		spki, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
		if err != nil {
			return nil, qerr.Op("generate certificate", err)
		}
		ext, err := endorse(spki, endorsers)
		if err != nil {
			return nil, qerr.Op("generate certificate", err)
		}
		tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, ext)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, qerr.Op("generate certificate", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, qerr.Op("generate certificate", err)
	}
	return &Credential{
		Certificate: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf},
		ClientAuth:  RequireClientCert,
	}, nil
}

// LoadKeyPair makes a credential from a PEM certificate chain (leaf first)
// and its PEM private key, as tls.LoadX509KeyPair reads them. Like
// GenerateSelfSigned, it requires client certificates and trusts nothing
// yet.
func LoadKeyPair(certPEMFile, keyPEMFile string) (*Credential, error) {
	cert, err := tls.LoadX509KeyPair(certPEMFile, keyPEMFile)
	if err != nil {
		return nil, qerr.Op("load key pair", err)
	}
	return &Credential{Certificate: cert, ClientAuth: RequireClientCert}, nil
}

// Identity returns the hex CertHash of the credential's own leaf
// certificate: what a peer puts in its TrustedCertHashes to pin this node.
// It is "" when the credential has no certificate.
func (c *Credential) Identity() string {
	if len(c.Certificate.Certificate) == 0 {
		return ""
	}
	return HashOf(c.Certificate.Certificate[0]).String()
}

// TrustHashes adds certificate hashes to the trusted set, allocating it on
// first use. Mind the contract on Credential: not while connections use it.
func (c *Credential) TrustHashes(h ...CertHash) {
	if c.TrustedCertHashes == nil {
		c.TrustedCertHashes = make(map[CertHash]struct{}, len(h))
	}
	for _, x := range h {
		c.TrustedCertHashes[x] = struct{}{}
	}
}

// TrustPubKeys adds ed25519 endorser keys to the trusted set, allocating it
// on first use. Mind the contract on Credential: not while connections use
// it.
//
// It panics on a key that is not ed25519.PublicKeySize bytes long, as the
// ed25519 package does: dropping it instead could leave the set empty, and
// an empty set trusts every peer.
func (c *Credential) TrustPubKeys(k ...ed25519.PublicKey) {
	for _, x := range k {
		if len(x) != ed25519.PublicKeySize {
			panic(fmt.Sprintf("certverify: TrustPubKeys: ed25519 public key is %d bytes, want %d",
				len(x), ed25519.PublicKeySize))
		}
	}
	if c.TrustedPubKeys == nil {
		c.TrustedPubKeys = make(map[[32]byte]struct{}, len(k))
	}
	for _, x := range k {
		c.TrustedPubKeys[[32]byte(x)] = struct{}{}
	}
}

// MyCertPubKeys returns the keys that endorse the credential's own leaf
// certificate, with every signature checked, as PubKeysFromCert does; a node
// can log them or check that its endorsements survived a reload.
func (c *Credential) MyCertPubKeys() ([]ed25519.PublicKey, error) {
	if len(c.Certificate.Certificate) == 0 {
		return nil, errNoCertificate
	}
	return PubKeysFromCert(c.Certificate.Certificate[0])
}

// logger returns where InsecureAcceptAnyPeer warnings go.
func (c *Credential) logger() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return slog.Default()
}

// errNoCertificate reports a credential used where it needs its own
// certificate but has none.
var errNoCertificate = errors.New("certverify: credential has no certificate")
