package conn

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/quicconn/quicconn/certverify"
)

// TestCertificateBeforeConnected proves the PeerCertificateReceived
// event: each side has the peer's verified certificate, and
// ReceiveRemoteCertificate can return it, while the connection is still
// Connecting.
func TestCertificateBeforeConnected(t *testing.T) {
	var mu sync.Mutex
	seen := map[bool]State{} // isServer → state when the certificate arrived
	testHookCertVerified = func(c *Connection) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		cert, err := c.ReceiveRemoteCertificate(ctx)
		if err != nil || cert == nil {
			t.Errorf("ReceiveRemoteCertificate inside the handshake = %v, %v", cert, err)
		}
		mu.Lock()
		seen[c.isServer] = c.State()
		mu.Unlock()
	}
	defer func() { testHookCertVerified = nil }()

	sc, err := certverify.GenerateSelfSigned([]string{"s"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cc, err := certverify.GenerateSelfSigned([]string{"c"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	sc.TrustHashes(certverify.HashOf(cc.Certificate.Certificate[0]))
	cc.TrustHashes(certverify.HashOf(sc.Certificate.Certificate[0]))
	reg := NewRegistration("cert")
	defer reg.Close()
	cfg := DefaultConfiguration("x")
	ln, err := Listen(reg, "127.0.0.1:0", cfg, sc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _ := New(reg, cc)
	errc := make(chan error, 1)
	go func() { errc <- c.Start(ctx, cfg, "127.0.0.1", uint16(ln.Addr().(*net.UDPAddr).Port)) }()
	s, err := ln.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Accept(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, server := range []bool{false, true} {
		if st, ok := seen[server]; !ok || st != Connecting {
			t.Errorf("server=%v: certificate arrived in state %v (seen %v), want Connecting", server, st, ok)
		}
	}
}
