package conn

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quicconn/quicconn/certverify"
	qerr "github.com/quicconn/quicconn/errors"
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

	_, s, startErr := pinnedHandshake(t, "cert", nil)
	if err := s.Accept(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-startErr; err != nil {
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

// TestTrustRemovedAtServerHandshake: trust that a server's credential
// withdraws after its handshake verified the client, but before the
// connection stored and watched the certificate, is not lost: the server
// closes with TrustRevoked instead of reaching Connected.
func TestTrustRemovedAtServerHandshake(t *testing.T) {
	defer func() { testHookServerHandshake = nil }()
	c, s, startErr := pinnedHandshake(t, "revoked-at-handshake", func(sc, cc *certverify.Credential) {
		testHookServerHandshake = func(*Connection) { sc.UntrustHashes(certverify.HashOf(cc.Certificate.Certificate[0])) }
	})
	ctx := context.Background()
	acceptErr := s.Accept(ctx)
	var ce *qerr.ConnectionError
	if !errors.As(acceptErr, &ce) || ce.Reason != qerr.TrustRevoked || !errors.Is(acceptErr, qerr.ErrBadCertificate) {
		t.Fatalf("server Accept = %v, want TrustRevoked matching ErrBadCertificate", acceptErr)
	}
	if s.RemoteCertificate() != nil {
		t.Error("server stored the certificate it no longer trusts")
	}
	<-startErr // the client may or may not have seen Connected first
	<-c.WatchShutdown()
	if !errors.As(c.Err(), &ce) || ce.Reason != qerr.ShutdownByPeer || ce.Code != CodeTrustRevoked {
		t.Errorf("client Err = %v, want ShutdownByPeer with code %#x", c.Err(), CodeTrustRevoked)
	}
}

// pinnedHandshake starts a handshake between a client and a server on
// loopback whose credentials pin each other, and returns the client, the
// server connection as the listener handed it out (Connecting), and the
// client's Start result to come. before, if set, sees the two credentials
// before the handshake starts. Everything is closed when the test ends.
func pinnedHandshake(t *testing.T, name string, before func(sc, cc *certverify.Credential)) (c, s *Connection, startErr <-chan error) {
	t.Helper()
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
	if before != nil {
		before(sc, cc)
	}
	reg := NewRegistration(name)
	t.Cleanup(func() { reg.Close() })
	cfg := DefaultConfiguration("x")
	ln, err := Listen(reg, "127.0.0.1:0", cfg, sc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	c, _ = New(reg, cc)
	errc := make(chan error, 1)
	go func() { errc <- c.Start(ctx, cfg, "127.0.0.1", uint16(ln.Addr().(*net.UDPAddr).Port)) }()
	if s, err = ln.Accept(ctx); err != nil {
		t.Fatal(err)
	}
	return c, s, errc
}

// TestAcceptStoresPeerAfterEnd: an Accept that stores the client's
// certificate only after the connection has ended (Accept is not among the
// goroutines that the end waits for) leaves no trust watch behind.
func TestAcceptStoresPeerAfterEnd(t *testing.T) {
	var fromAccept atomic.Bool
	testHookServerHandshake = func(c *Connection) {
		buf := make([]byte, 16<<10)
		if !bytes.Contains(buf[:runtime.Stack(buf, false)], []byte("(*Connection).Accept(")) {
			return // awaitHandshake's, before Accept waited
		}
		fromAccept.Store(true)
		<-c.WatchShutdown()
	}
	defer func() { testHookServerHandshake = nil }()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for attempt := range 10 {
		fromAccept.Store(false)
		c, s, startErr := pinnedHandshake(t, fmt.Sprintf("late-peer-%d", attempt), nil)
		go func() {
			if <-startErr == nil {
				c.ShutdownAndWait(ctx, 0)
			}
		}()
		err := s.Accept(ctx)
		if !fromAccept.Load() {
			continue // the handshake ended before Accept waited: try again
		}
		if err == nil {
			t.Errorf("Accept on a connection that ended = nil, want its error")
		}
		if st := s.State(); st != ShutdownComplete {
			t.Errorf("state after Accept = %v, want ShutdownComplete", st)
		}
		s.mu.Lock()
		left := s.lt.stopWatch != nil
		s.mu.Unlock()
		if left {
			t.Error("the trust watch begun after ShutdownComplete was left running")
		}
		return
	}
	t.Fatal("in 10 attempts, Accept never took the end of the handshake")
}
