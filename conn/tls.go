package conn

// TLS: what the handshake's callbacks tell the connection about the peer's
// certificate.

import (
	"crypto/tls"
)

// hookTLS makes conf report the peer certificate to c: accepted, it is
// stored and wakes ReceiveRemoteCertificate; rejected, the reason is kept
// for the connection's error. The credential's VerifyConnection, where
// certverify enforces its policy, still decides.
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
			c.mu.Lock()
			c.peerVerified(cs.PeerCertificates[0])
			c.mu.Unlock()
			if testHookCertVerified != nil {
				testHookCertVerified(c)
			}
		}
		return nil
	}
	if c.opts.keyLog != nil {
		conf.KeyLogWriter = c.opts.keyLog
	}
}

// testHookCertVerified, when set by a test, runs after a peer certificate
// was verified and stored, still inside the TLS handshake.
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
