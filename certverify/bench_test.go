package certverify

import (
	"crypto/ed25519"
	"crypto/tls"
	"testing"
)

// BenchmarkVerifyConnection measures the policy as a handshake runs it: the
// server config's VerifyConnection on a parsed client leaf, pinned by hash
// and by endorser key. It is the cost trust changes must not raise.
func BenchmarkVerifyConnection(b *testing.B) {
	k := endorser(1)
	peer := mint(b, certSpec{endorsers: []ed25519.PrivateKey{k}})
	for _, bb := range []struct {
		name  string
		trust func(*Credential)
	}{
		{"hash", func(c *Credential) { c.TrustHashes(HashOf(peer.der)) }},
		{"endorser", func(c *Credential) { c.TrustPubKeys(pub(k)) }},
	} {
		b.Run(bb.name, func(b *testing.B) {
			c := generate(b, []string{"server.test"})
			bb.trust(c)
			verify := c.ServerTLSConfig(nil).VerifyConnection
			cs := tls.ConnectionState{PeerCertificates: peer.chain()}
			b.ReportAllocs()
			for b.Loop() {
				if err := verify(cs); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
