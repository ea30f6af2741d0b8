package certverify

import (
	"crypto/tls"
	"crypto/x509"
	"slices"

	qerr "github.com/quicconn/quicconn/errors"
)

// ClientTLSConfig returns a TLS 1.3 configuration for dialing a server as
// this credential: it presents the credential's certificate (when it has
// one, and the one in force at each handshake: see SetCertificate), offers
// alpn, sends serverName as SNI and verifies the server with the
// credential's policy.
//
// The policy runs in the config's VerifyConnection callback; crypto/tls's
// own verification is off (InsecureSkipVerify), because the policy replaces
// it — it is never skipped: even a credential that pins nothing checks that
// the server's certificate parses, is correctly signed and is within its
// dates, and then rejects it unless Roots or AcceptUnpinned is set. VerifyConnection runs on every handshake, resumed ones included, and
// an error from it makes crypto/tls send the bad_certificate alert and fail
// the handshake with the *qerr.CertificateError (over QUIC, quic-go reports
// CRYPTO_ERROR 0x12a and keeps the CertificateError reachable with
// errors.As).
//
// When Roots is set, serverName (the argument, not the SNI, which is empty
// for IP addresses) must also be a name of the server's leaf, unless it is
// "". Without Roots names are not checked: the hash or an endorsement is the
// identity.
//
// To learn the verified certificate, wrap the callback; keep ours first so
// that yours sees only certificates that passed:
//
//	cfg := cred.ClientTLSConfig(host, alpn)
//	verify := cfg.VerifyConnection
//	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
//		if err := verify(cs); err != nil {
//			return err
//		}
//		gotPeer(cs.PeerCertificates[0]) // verified leaf
//		return nil
//	}
//
// crypto/tls calls VerifyConnection before it checks the peer's
// CertificateVerify, its proof that it holds the certificate's key; until
// the handshake completes, the leaf is trusted but not yet authenticated.
//
// The config reads the credential when each handshake runs: trust changes
// and SetCertificate apply to the config's later handshakes, resumed ones
// included, and need no new config.
func (c *Credential) ClientTLSConfig(serverName string, alpn []string) *tls.Config {
	cfg := c.baseConfig(alpn)
	cfg.ServerName = serverName
	cfg.InsecureSkipVerify = true // replaced by VerifyConnection, see above
	cfg.VerifyConnection = c.verifyServer(serverName)
	return cfg
}

// ServerTLSConfig returns a TLS 1.3 configuration for accepting clients as
// this credential: it presents the credential's certificate (the one in
// force at each handshake, through GetCertificate), accepts the protocols in alpn
// and treats client certificates according to c.ClientAuth:
//
//   - RequireClientCert (and any unknown value, the safe side): a client
//     without a certificate fails the handshake in crypto/tls (TLS 1.3
//     certificate_required alert); one with a certificate must pass the
//     policy;
//   - RequestClientCert: a presented certificate must pass the policy;
//     absence is accepted;
//   - NoClientCert: no certificate is asked for.
//
// As in ClientTLSConfig, the policy runs in VerifyConnection, which callers
// may wrap the same way (with the same caveat); a failure sends the
// bad_certificate alert. A wrapper must allow for an empty
// cs.PeerCertificates here: crypto/tls calls VerifyConnection on every
// handshake, also when no client certificate was asked for or given. Names
// are not checked on the server side.
func (c *Credential) ServerTLSConfig(alpn []string) *tls.Config {
	cfg := c.baseConfig(alpn)
	switch c.ClientAuth {
	case RequestClientCert:
		cfg.ClientAuth = tls.RequestClientCert
	case NoClientCert:
		cfg.ClientAuth = tls.NoClientCert
	default:
		// RequireAnyClientCert, not RequireAndVerifyClientCert: crypto/tls
		// would check chains against ClientCAs, which pinned self-signed
		// certificates never pass; VerifyConnection does the checking.
		cfg.ClientAuth = tls.RequireAnyClientCert
	}
	cfg.VerifyConnection = c.verifyClient(cfg.ClientAuth == tls.RequireAnyClientCert)
	return cfg
}

// baseConfig holds what both sides share. TLS 1.3 is the only version QUIC
// allows, and pinning the same minimum for TCP keeps one behaviour.
//
// The certificate is handed out by callbacks, not in Certificates, so that
// each handshake presents the one in force when it runs.
func (c *Credential) baseConfig(alpn []string) *tls.Config {
	return &tls.Config{
		MinVersion:           tls.VersionTLS13,
		NextProtos:           slices.Clone(alpn),
		CurvePreferences:     slices.Clone(c.CurvePreferences),
		GetCertificate:       c.serverCertificate,
		GetClientCertificate: c.clientCertificate,
	}
}

// serverCertificate is the server side's GetCertificate.
func (c *Credential) serverCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	cert := c.certificate()
	if len(cert.Certificate) == 0 {
		return nil, errNoCertificate
	}
	return cert, nil
}

// clientCertificate is the client side's GetClientCertificate. Without a
// certificate it sends none, as crypto/tls does for an empty Certificates,
// and the server decides whether that is enough.
func (c *Credential) clientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return c.certificate(), nil
}

// verifyServer is the client side's VerifyConnection.
func (c *Credential) verifyServer(serverName string) func(tls.ConnectionState) error {
	serverAuth := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	return func(cs tls.ConnectionState) error {
		return c.verifyPeer("tls handshake", cs.PeerCertificates, true, serverName, serverAuth)
	}
}

// verifyClient is the server side's VerifyConnection.
func (c *Credential) verifyClient(required bool) func(tls.ConnectionState) error {
	clientAuth := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	return func(cs tls.ConnectionState) error {
		return c.verifyPeer("tls handshake", cs.PeerCertificates, required, "", clientAuth)
	}
}

// verifyPeer applies the policy to the certificates of a handshake. It
// takes them rather than the whole tls.ConnectionState, which is large,
// since the signature check below it is the deepest point of a handshake's
// stack.
func (c *Credential) verifyPeer(op string, certs []*x509.Certificate, required bool, serverName string, usages []x509.ExtKeyUsage) error {
	if len(certs) == 0 {
		if !required {
			return nil // nothing presented, nothing asked: nothing skipped
		}
		if c.InsecureAcceptAnyPeer {
			c.warnSkipped(op, CertHash{})
			return nil
		}
		// crypto/tls already refuses an empty certificate list where one
		// is required; this guards resumption and future changes.
		return &qerr.CertificateError{Reason: reasonNoCertificate}
	}
	leaf := certs[0]
	if c.InsecureAcceptAnyPeer {
		c.warnSkipped(op, HashOf(leaf.Raw))
		return nil
	}
	return c.verifyLeaf(op, leaf, certs[1:], serverName, usages)
}
