package certverify

import (
	"bytes"
	"crypto"
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
	"slices"
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

// Credential is a node's identity and its rules for trusting peers: its
// certificate and key, and the pins (certificate hashes, SPKI hashes and
// endorser keys) against which peer certificates are checked (see the
// package documentation for the policy).
//
// Trust is live: TrustHashes, UntrustHashes and the other Trust and Untrust
// methods, SetCertificate and Clone are safe at any time, from any
// goroutine, while any number of handshakes verify with the credential.
// Each handshake reads one immutable snapshot of the pins, so it sees a
// change entirely or not at all, and takes no lock. A change applies to
// the handshakes that start after it; a change that removes trust also
// runs the OnTrustRemoved callbacks, through which package conn re-checks
// its live connections.
//
// The exported fields are configuration: set them before the credential is
// first used, and do not change them afterwards (that races with
// handshakes). The zero value, or a struct literal, is ready to use and
// pins nothing.
//
// A Credential must not be copied after first use: a copy would share the
// original's pins and callbacks in a racy way (go vet reports copies).
// Clone makes an independent one.
type Credential struct {
	// Certificate is this node's chain (leaf first) and private key, as
	// configured before first use. Rotate it with SetCertificate, after
	// which this field is no longer read.
	Certificate tls.Certificate
	// Roots, when set, replaces the self-signed check: a peer's leaf must
	// chain to one of these CAs, through the intermediates it presents.
	// With Roots and no pins, the CA is the trust: every peer it issued is
	// accepted.
	Roots *x509.CertPool
	// ClientAuth says what a server made from this credential asks of
	// clients.
	ClientAuth ClientAuth
	// AcceptUnpinned, with no pins and no Roots, accepts every peer whose
	// certificate is well formed (it parses, is self-signed, within its
	// dates, with valid endorsements), as the Connection API of a Rust
	// wrapper over msquic does; each acceptance logs a warning to Logger.
	// Without it, such a credential rejects every peer ("no trust
	// configured"). Once anything is pinned, AcceptUnpinned has no effect.
	AcceptUnpinned bool
	// InsecureAcceptAnyPeer skips verification entirely, for tests only.
	// Every skipped verification logs a warning to Logger, so the setting
	// cannot go unnoticed in a deployment.
	InsecureAcceptAnyPeer bool
	// Logger receives the AcceptUnpinned and InsecureAcceptAnyPeer
	// warnings; nil means slog.Default().
	Logger *slog.Logger
	// CurvePreferences, when set, are the key exchanges the TLS configs
	// offer and accept, in order of preference (tls.Config.CurvePreferences);
	// nil keeps crypto/tls's default, which since Go 1.24 puts the hybrid
	// post-quantum X25519MLKEM768 first. A mesh that pins
	// []tls.CurveID{tls.X25519} trades that protection for handshakes about
	// 45 % cheaper; both ends must share at least one.
	CurvePreferences []tls.CurveID

	live live
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
// The credential requires client certificates (RequireClientCert) and pins
// nothing, so it rejects every peer until trust is added with TrustHashes,
// TrustSPKIs or TrustPubKeys (or Roots or AcceptUnpinned is set).
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
// GenerateSelfSigned, it requires client certificates and trusts no peer
// yet.
func LoadKeyPair(certPEMFile, keyPEMFile string) (*Credential, error) {
	cert, err := tls.LoadX509KeyPair(certPEMFile, keyPEMFile)
	if err != nil {
		return nil, qerr.Op("load key pair", err)
	}
	return &Credential{Certificate: cert, ClientAuth: RequireClientCert}, nil
}

// Identity returns the hex CertHash of the credential's own leaf
// certificate, the one new handshakes present (it follows SetCertificate):
// what a peer passes to TrustHashes to pin this node. It is "" when the
// credential has no certificate.
func (c *Credential) Identity() string {
	cert := c.certificate()
	if len(cert.Certificate) == 0 {
		return ""
	}
	return HashOf(cert.Certificate[0]).String()
}

// MyCertPubKeys returns the keys that endorse the credential's own leaf
// certificate (the one new handshakes present), with every signature
// checked, as PubKeysFromCert does; a node can log them or check that its
// endorsements survived a reload or a rotation.
func (c *Credential) MyCertPubKeys() ([]ed25519.PublicKey, error) {
	cert := c.certificate()
	if len(cert.Certificate) == 0 {
		return nil, errNoCertificate
	}
	return PubKeysFromCert(cert.Certificate[0])
}

// certificate returns the certificate new handshakes present. The caller
// must not modify it.
func (c *Credential) certificate() *tls.Certificate {
	if p := c.live.cert.Load(); p != nil {
		return p
	}
	return &c.Certificate
}

// SetCertificate rotates the credential's own certificate: handshakes that
// start after it returns present cert, while live connections go on with
// the one they were made with. Identity and MyCertPubKeys follow. It is
// safe at any time, from any goroutine.
//
// cert must hold a chain whose leaf parses and a private key that matches
// the leaf's public key; otherwise SetCertificate changes nothing and
// returns a *errors.ConfigError. Peers that pinned the old certificate's
// hash do not trust the new one: pin by SPKI hash (TrustSPKIs) or by
// endorsement to rotate without redistributing hashes, or have peers pin
// the new hash first.
func (c *Credential) SetCertificate(cert tls.Certificate) error {
	const op = "set certificate"
	bad := func(reason string) error {
		return qerr.Op(op, &qerr.ConfigError{Field: "Certificate", Reason: reason})
	}
	if len(cert.Certificate) == 0 {
		return bad("has no certificate chain")
	}
	leaf := cert.Leaf
	if leaf == nil || !bytes.Equal(leaf.Raw, cert.Certificate[0]) {
		var err error
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return bad("leaf does not parse: " + err.Error())
		}
	}
	signer, ok := cert.PrivateKey.(crypto.Signer)
	if !ok {
		if cert.PrivateKey == nil {
			return bad("has no private key")
		}
		return bad(fmt.Sprintf("private key of type %T is not a crypto.Signer", cert.PrivateKey))
	}
	type equaler interface{ Equal(crypto.PublicKey) bool }
	if pk, ok := signer.Public().(equaler); !ok || !pk.Equal(leaf.PublicKey) {
		return bad("private key does not match the leaf's public key")
	}
	next := cert
	next.Certificate = slices.Clone(cert.Certificate)
	next.Leaf = leaf
	c.live.mu.Lock()
	c.live.cert.Store(&next)
	c.live.mu.Unlock()
	return nil
}

// Clone returns an independent copy of the credential: the same
// configuration, the certificate c presents now, and its own copy of c's
// pins, which later trust changes to either credential leave untouched. It
// has no OnTrustRemoved callbacks. Roots and Logger are shared, as the
// pointers they are. Clone is safe at any time, from any goroutine.
func (c *Credential) Clone() *Credential {
	cert := *c.certificate()
	cert.Certificate = slices.Clone(cert.Certificate)
	n := &Credential{
		Certificate:           cert,
		Roots:                 c.Roots,
		ClientAuth:            c.ClientAuth,
		AcceptUnpinned:        c.AcceptUnpinned,
		InsecureAcceptAnyPeer: c.InsecureAcceptAnyPeer,
		Logger:                c.Logger,
		CurvePreferences:      slices.Clone(c.CurvePreferences),
	}
	// Snapshots are immutable: sharing one is a copy until either side
	// changes, and a change builds a new snapshot.
	n.live.trust.Store(c.live.trust.Load())
	return n
}

// logger returns where the AcceptUnpinned and InsecureAcceptAnyPeer
// warnings go.
func (c *Credential) logger() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return slog.Default()
}

// errNoCertificate reports a credential used where it needs its own
// certificate but has none.
var errNoCertificate = errors.New("certverify: credential has no certificate")
