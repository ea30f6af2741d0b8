package conn

// TLS: what the handshake's callbacks tell the connection about the
// certificates, and the watch that keeps the peer's trust live.

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"

	"github.com/quic-go/quic-go"
	"github.com/quicconn/quicconn/certverify"
	qerr "github.com/quicconn/quicconn/errors"
)

// CodeTrustRevoked is the application error code with which a connection
// closes when its credential stops trusting the peer (an Untrust call of
// certverify.Credential): the peer sees Reason ShutdownByPeer with this
// code and a reason phrase that says its certificate is no longer trusted.
// It echoes the TLS bad_certificate alert (0x12a) that a handshake would
// have failed with.
const CodeTrustRevoked = 0x12a

// hookTLS makes a client's conf report the handshake's certificates to c:
// the peer's, accepted, is stored, wakes ReceiveRemoteCertificate and is
// watched for revocation; rejected, the reason is kept for the connection's
// error. The credential's VerifyConnection, where certverify enforces its
// policy, still decides. A server's handshakes share the listener's config
// and report after the handshake instead (serverVerified, closeError).
func (c *Connection) hookTLS(conf *tls.Config) {
	vc := conf.VerifyConnection
	conf.VerifyConnection = func(cs tls.ConnectionState) error {
		if vc != nil {
			if err := vc(cs); err != nil {
				c.setCertErr(err)
				return err
			}
		}
		if len(cs.PeerCertificates) > 0 {
			if err := c.watchTrust(cs.PeerCertificates[0]); err != nil {
				c.setCertErr(err)
				return err
			}
		}
		return nil
	}
	if gcc := conf.GetClientCertificate; gcc != nil {
		conf.GetClientCertificate = func(cri *tls.CertificateRequestInfo) (*tls.Certificate, error) {
			cert, err := gcc(cri)
			c.mu.Lock()
			c.lt.certRequested = true
			c.lt.presented = err == nil && cert != nil && len(cert.Certificate) > 0
			c.mu.Unlock()
			return cert, err
		}
	}
	if c.opts.keyLog != nil {
		conf.KeyLogWriter = c.opts.keyLog
	}
}

// watchTrust stores leaf, which the credential has just verified, and
// watches it: every trust change that removes trust re-checks it, and
// closes the connection once it no longer passes. The check is made once
// more after the watch began, so that a change that raced with the
// handshake's verification is not missed: watchTrust then returns its
// error. finish ends the watch.
func (c *Connection) watchTrust(leaf *x509.Certificate) error {
	stop := c.cred.OnTrustRemoved(func() { c.recheckTrust(leaf) })
	if err := c.cred.VerifyTrust(leaf); err != nil {
		stop()
		return err
	}
	c.mu.Lock()
	c.peerVerified(leaf, stop)
	c.mu.Unlock()
	if testHookCertVerified != nil {
		testHookCertVerified(c)
	}
	return nil
}

// serverVerified is, on a server whose handshake has just completed with
// state cs, what hookTLS's callback is on a client: the client's
// certificate, which the credential verified in the handshake, is stored
// and watched. It reports false, having closed the connection, when the
// trust was removed since.
func (c *Connection) serverVerified(cs *quic.ConnectionState) bool {
	certs := cs.TLS.PeerCertificates
	if len(certs) == 0 {
		return true
	}
	if err := c.watchTrust(certs[0]); err != nil {
		c.abort(qerr.TrustRevoked, CodeTrustRevoked, &revokedError{hash: certverify.HashOf(certs[0].Raw), err: err})
		return false
	}
	return true
}

// recheckTrust closes the connection if the credential no longer trusts
// leaf. It runs on the goroutine of the Untrust call and does not block.
func (c *Connection) recheckTrust(leaf *x509.Certificate) {
	err := c.cred.VerifyTrust(leaf)
	if err == nil {
		return
	}
	c.opts.logger.Warn("quicconn: peer no longer trusted, closing", "registration", c.reg.name, "server", c.isServer, "err", err)
	c.abort(qerr.TrustRevoked, CodeTrustRevoked, &revokedError{hash: certverify.HashOf(leaf.Raw), err: err})
}

// revokedError is the cause, and the reason phrase sent to the peer, of a
// close for revoked trust.
type revokedError struct {
	hash certverify.CertHash
	err  error // the credential's verdict
}

func (e *revokedError) Error() string {
	return fmt.Sprintf("certificate no longer trusted (sha256 %x)", e.hash[:])
}

func (e *revokedError) Unwrap() error { return e.err }

// testHookCertVerified, when set by a test, runs after a peer certificate
// was verified and stored, before the connection is Connected: inside the
// TLS handshake on a client, just after it on a server.
var testHookCertVerified func(*Connection)

func (c *Connection) setCertErr(err error) {
	c.mu.Lock()
	c.peerRejected(err)
	c.mu.Unlock()
	c.opts.logger.Warn("quicconn: peer certificate rejected", "registration", c.reg.name, "server", c.isServer, "err", err)
}

// certRejected reports whether this side rejected the peer's certificate.
func (c *Connection) certRejected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lt.certErr != nil
}
