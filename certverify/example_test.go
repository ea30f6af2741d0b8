package certverify_test

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"log"
	"strings"

	"github.com/quicconn/quicconn/certverify"
	qerr "github.com/quicconn/quicconn/errors"
)

// Two nodes pin each other by hash; a third, unknown node is refused.
func ExampleCredential_TrustHashes() {
	alice, err := certverify.GenerateSelfSigned([]string{"alice.mesh"}, nil)
	if err != nil {
		log.Fatal(err)
	}
	bob, err := certverify.GenerateSelfSigned([]string{"bob.mesh"}, nil)
	if err != nil {
		log.Fatal(err)
	}
	mallory, err := certverify.GenerateSelfSigned([]string{"bob.mesh"}, nil)
	if err != nil {
		log.Fatal(err)
	}

	// Identities travel as hex, in configuration or out of band.
	bobID, err := certverify.ParseCertHash(bob.Identity())
	if err != nil {
		log.Fatal(err)
	}
	alice.TrustHashes(bobID)

	fmt.Println("bob:", alice.VerifyCert(bob.Certificate.Certificate[0]))
	err = alice.VerifyCert(mallory.Certificate.Certificate[0])
	var ce *qerr.CertificateError
	if errors.As(err, &ce) {
		fmt.Println("mallory:", ce.Reason, errors.Is(err, qerr.ErrBadCertificate))
	}
	// Output:
	// bob: <nil>
	// mallory: certificate hash not trusted true
}

// An operator's ed25519 key endorses a node's certificate; peers that trust
// the operator's key accept the node without knowing its hash.
func ExampleGenerateSelfSigned() {
	_, operator, err := ed25519.GenerateKey(nil)
	if err != nil {
		log.Fatal(err)
	}
	node, err := certverify.GenerateSelfSigned([]string{"node1.mesh", "10.0.0.1"}, []ed25519.PrivateKey{operator})
	if err != nil {
		log.Fatal(err)
	}
	keys, err := node.MyCertPubKeys()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("endorsed by the operator:", len(keys) == 1 && keys[0].Equal(operator.Public()))
	fmt.Println("client auth:", node.ClientAuth)

	peer, err := certverify.GenerateSelfSigned([]string{"node2.mesh"}, nil)
	if err != nil {
		log.Fatal(err)
	}
	peer.TrustPubKeys(operator.Public().(ed25519.PublicKey))
	fmt.Println("peer accepts node1:", peer.VerifyCert(node.Certificate.Certificate[0]))
	// Output:
	// endorsed by the operator: true
	// client auth: RequireClientCert
	// peer accepts node1: <nil>
}

func ExampleCertHash_String() {
	h := certverify.HashOf([]byte("hello"))
	fmt.Println(h)
	// Output:
	// 2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824
}

func ExampleParseCertHash() {
	h, err := certverify.ParseCertHash("2CF24DBA5FB0A30E26E83B2AC5B9E29E1B161E5C1FA7425E73043362938B9824")
	fmt.Println(h, err)
	_, err = certverify.ParseCertHash("2cf24dba")
	fmt.Println(err)
	// Output:
	// 2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824 <nil>
	// certverify: certificate hash "2cf24dba": want 64 hex digits, got 8 characters
}

// Trust is live: peers are admitted and revoked while connections run. A
// live connection re-checks its peer when trust is removed, as package conn
// does for every connection it verified.
func Example_liveTrust() {
	node, err := certverify.GenerateSelfSigned([]string{"node.mesh"}, nil)
	if err != nil {
		log.Fatal(err)
	}
	peer, err := certverify.GenerateSelfSigned([]string{"peer.mesh"}, nil)
	if err != nil {
		log.Fatal(err)
	}
	peerDER := peer.Certificate.Certificate[0]

	// Fail closed: a credential that pins nothing rejects everyone.
	var ce *qerr.CertificateError
	if errors.As(node.VerifyCert(peerDER), &ce) {
		what, _, _ := strings.Cut(ce.Reason, ":")
		fmt.Println("before admission:", what)
	}

	// Admit the peer; a live connection to it watches for revocations.
	node.TrustHashes(certverify.HashOf(peerDER))
	fmt.Println("admitted:", node.VerifyCert(peerDER))
	stop := node.OnTrustRemoved(func() {
		if err := node.VerifyTrust(peer.Certificate.Leaf); err != nil {
			fmt.Println("live connection closes:", errors.Is(err, qerr.ErrBadCertificate))
		}
	})
	defer stop()

	// Revoke it: the callback runs before UntrustHashes returns.
	node.UntrustHashes(certverify.HashOf(peerDER))
	fmt.Println("after revocation, new handshakes fail:", node.VerifyCert(peerDER) != nil)
	// Output:
	// before admission: no trust configured
	// admitted: <nil>
	// live connection closes: true
	// after revocation, new handshakes fail: true
}

// Pinning a peer's key rather than its certificate: the pin holds when the
// peer renews its certificate with the same key.
func ExampleCredential_TrustSPKIs() {
	node, err := certverify.GenerateSelfSigned([]string{"node.mesh"}, nil)
	if err != nil {
		log.Fatal(err)
	}
	peer, err := certverify.GenerateSelfSigned([]string{"peer.mesh"}, nil)
	if err != nil {
		log.Fatal(err)
	}
	pin, err := certverify.SPKIHashOf(peer.Certificate.Certificate[0])
	if err != nil {
		log.Fatal(err)
	}
	// Pins travel as base64, as in HPKP and Chromium's SPKI lists.
	parsed, err := certverify.ParseSPKIHash(pin.String())
	if err != nil {
		log.Fatal(err)
	}
	node.TrustSPKIs(parsed)
	fmt.Println("peer:", node.VerifyCert(peer.Certificate.Certificate[0]))
	// Output:
	// peer: <nil>
}

func ExampleSPKIHash_String() {
	h := certverify.SPKIHash(certverify.HashOf([]byte("hello")))
	fmt.Println(h)
	// Output:
	// LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=
}

// Rotating a node's certificate: new handshakes present the new one, and
// Identity follows; connections made with the old one go on.
func ExampleCredential_SetCertificate() {
	node, err := certverify.GenerateSelfSigned([]string{"node.mesh"}, nil)
	if err != nil {
		log.Fatal(err)
	}
	renewed, err := certverify.GenerateSelfSigned([]string{"node.mesh"}, nil)
	if err != nil {
		log.Fatal(err)
	}
	before := node.Identity()
	if err := node.SetCertificate(renewed.Certificate); err != nil {
		log.Fatal(err)
	}
	fmt.Println("identity changed:", node.Identity() != before)
	fmt.Println("identity is the new certificate's:", node.Identity() == renewed.Identity())
	// Output:
	// identity changed: true
	// identity is the new certificate's: true
}
