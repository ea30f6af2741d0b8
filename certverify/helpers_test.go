package certverify

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	qerr "github.com/quicconn/quicconn/errors"
)

// endorser returns a deterministic ed25519 key, so failures print the same
// keys on every run.
func endorser(n byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{n}, ed25519.SeedSize))
}

func pub(k ed25519.PrivateKey) ed25519.PublicKey { return k.Public().(ed25519.PublicKey) }

// minted is a certificate made by mint, with its key.
type minted struct {
	der  []byte
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// tlsCert returns the chain (this certificate, then chain) and key as a
// tls.Certificate.
func (m minted) tlsCert(chain ...minted) tls.Certificate {
	c := tls.Certificate{Certificate: [][]byte{m.der}, PrivateKey: m.key, Leaf: m.cert}
	for _, x := range chain {
		c.Certificate = append(c.Certificate, x.der)
	}
	return c
}

// certSpec describes a certificate for mint; the zero value is a valid
// self-signed leaf for "node.test", like GenerateSelfSigned's.
type certSpec struct {
	name                string
	notBefore, notAfter time.Time
	parent              *minted // nil: self-signed
	isCA                bool
	endorsers           []ed25519.PrivateKey
	// badEndorsement replaces the signature of the first endorsement with
	// one over other bytes, keeping the certificate itself well signed.
	badEndorsement bool
	// extValue, when set, is the raw endorsement extension value.
	extValue []byte
	critical bool
	usages   []x509.ExtKeyUsage
	// key, when set, is the certificate's key, as for a re-issue; else a
	// fresh one.
	key *ecdsa.PrivateKey
}

// mint makes a certificate with full control over what GenerateSelfSigned
// fixes: dates, issuer, CA-ness and raw endorsement bytes.
func mint(t testing.TB, s certSpec) minted {
	t.Helper()
	key := s.key
	if key == nil {
		var err error
		if key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			t.Fatal(err)
		}
	}
	if s.name == "" {
		s.name = "node.test"
	}
	now := time.Now()
	if s.notBefore.IsZero() {
		s.notBefore = now.Add(-time.Hour)
	}
	if s.notAfter.IsZero() {
		s.notAfter = now.Add(time.Hour)
	}
	if s.usages == nil {
		s.usages = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	}
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: s.name},
		DNSNames:              []string{s.name},
		NotBefore:             s.notBefore,
		NotAfter:              s.notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           s.usages,
		BasicConstraintsValid: true,
		IsCA:                  s.isCA,
	}
	if s.isCA {
		tmpl.KeyUsage |= x509.KeyUsageCertSign
		tmpl.ExtKeyUsage = nil
		tmpl.DNSNames = nil
	}
	spki, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	ext := s.extValue
	if ext == nil && len(s.endorsers) > 0 {
		e, err := endorse(spki, s.endorsers)
		if err != nil {
			t.Fatal(err)
		}
		ext = e.Value
		if s.badEndorsement {
			var entries [][]byte
			if _, err := asn1.Unmarshal(ext, &entries); err != nil {
				t.Fatal(err)
			}
			copy(entries[0][ed25519.PublicKeySize:], ed25519.Sign(s.endorsers[0], []byte("not the SPKI")))
			if ext, err = asn1.Marshal(entries); err != nil {
				t.Fatal(err)
			}
		}
	}
	if ext != nil {
		tmpl.ExtraExtensions = []pkix.Extension{{Id: oidEndorsements, Critical: s.critical, Value: ext}}
	}
	parent, signer := tmpl, any(key)
	if s.parent != nil {
		parent, signer = s.parent.cert, s.parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return minted{der: der, cert: cert, key: key}
}

// generate is GenerateSelfSigned that fails the test on error.
func generate(t testing.TB, subjects []string, endorsers ...ed25519.PrivateKey) *Credential {
	t.Helper()
	c, err := GenerateSelfSigned(subjects, endorsers)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// certErr is the comparable view of a *qerr.CertificateError: what the
// tests pin down. A nil error maps to the zero certErr.
type certErr struct {
	Reason string
	Hash   CertHash
}

// asCertErr reads err as a certificate error; errors of another kind fail
// the test, since every verification failure must be one.
func asCertErr(t testing.TB, err error) certErr {
	t.Helper()
	if err == nil {
		return certErr{}
	}
	ce, ok := errors.AsType[*qerr.CertificateError](err)
	if !ok {
		t.Fatalf("error %v (%T) is not a *errors.CertificateError", err, err)
	}
	if !errors.Is(err, qerr.ErrBadCertificate) {
		t.Errorf("error %v does not match ErrBadCertificate", err)
	}
	return certErr{Reason: ce.Reason, Hash: ce.Hash}
}

// logRecorder is a slog.Handler that keeps every record, for tests that
// check what was logged; handshakes log from their own goroutines.
type logRecorder struct {
	mu      sync.Mutex
	records []slog.Record
}

func (h *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *logRecorder) WithGroup(string) slog.Handler            { return h }
func (h *logRecorder) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, r.Clone())
	return nil
}

// warnings returns the messages of the warnings logged so far.
func (h *logRecorder) warnings() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, r := range h.records {
		if r.Level == slog.LevelWarn {
			out = append(out, r.Message)
		}
	}
	return out
}

// chain returns the parsed certificate as a one-element chain, as a
// tls.ConnectionState holds it.
func (m minted) chain() []*x509.Certificate { return []*x509.Certificate{m.cert} }
