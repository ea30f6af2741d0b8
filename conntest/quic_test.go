package conntest_test

// This file proves the pipe carries real QUIC: raw quic-go, without
// quicconn's conn package, over a lossy, delayed pipe. It is the only place in
// quicconn's tests where a client skips certificate verification; the
// certificate is beside the point here.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	mrand "math/rand/v2"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/quicconn/quicconn/conntest"
)

func TestQUICTransfer(t *testing.T) {
	if testing.Short() {
		t.Skip("transfers megabytes through quic-go")
	}
	for _, tc := range []struct {
		name     string
		synctest bool
		size     int
		link     conntest.Link
	}{
		{
			name:     "16 MiB over 5% loss and 10 ms delay in fake time",
			synctest: true,
			size:     16 << 20,
			link:     conntest.Link{Loss: 0.05, Delay: 10 * time.Millisecond, Seed: 1},
		},
		{
			// At 5 % loss quic-go's congestion control holds the rate near
			// 0.4 MB/s, so 16 MiB would take ~45 s of real time, and more on a
			// loaded machine, where late timers stretch the RTT. 2 MiB
			// exercises the same link on the real clock in ~5 s.
			name: "2 MiB over 5% loss and 10 ms delay in real time",
			size: 2 << 20,
			link: conntest.Link{Loss: 0.05, Delay: 10 * time.Millisecond, Seed: 1},
		},
		{
			name:     "4 MiB with every impairment in fake time",
			synctest: true,
			size:     4 << 20,
			link: conntest.Link{
				Loss: 0.02, Duplicate: 0.02, Reorder: 0.02,
				Delay: 20 * time.Millisecond, Jitter: 5 * time.Millisecond,
				MTU: 1400, Bandwidth: 10 << 20, Seed: 2,
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wall := time.Now()
			var took time.Duration
			run := func(t *testing.T) { took = quicTransfer(t, tc.link, tc.size) }
			if tc.synctest {
				synctest.Test(t, run)
			} else {
				run(t)
			}
			clock := "real"
			if tc.synctest {
				clock = "fake"
			}
			t.Logf("%d MiB in %v of %s time (%.1f MB/s), %v of wall time",
				tc.size>>20, took.Round(time.Millisecond), clock,
				float64(tc.size)/took.Seconds()/1e6, time.Since(wall).Round(time.Millisecond))
		})
	}
}

// quicTransfer sends size bytes on one stream from a quic-go client to a
// quic-go server over a pipe with link l, checks their SHA-256 and returns how
// long the transfer took from the start of the handshake.
func quicTransfer(t *testing.T, l conntest.Link, size int) time.Duration {
	a, b := conntest.NewPipe(l)
	defer a.Close()
	defer b.Close()
	serverTr := &quic.Transport{Conn: b}
	defer serverTr.Close()
	clientTr := &quic.Transport{Conn: a}
	defer clientTr.Close()

	ln, err := serverTr.Listen(serverTLS(), &quic.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	type result struct {
		sum [32]byte
		n   int64
		err error
	}
	got := make(chan result, 1)
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		conn, err := ln.Accept(ctx)
		if err != nil {
			got <- result{err: err}
			return
		}
		defer conn.CloseWithError(0, "")
		str, err := conn.AcceptUniStream(ctx)
		if err != nil {
			got <- result{err: err}
			return
		}
		h := sha256.New()
		n, err := io.Copy(h, str)
		got <- result{sum: [32]byte(h.Sum(nil)), n: n, err: err}
	})

	start := time.Now()
	conn, err := clientTr.Dial(ctx, b.LocalAddr(), clientTLS(), &quic.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseWithError(0, "")
	str, err := conn.OpenUniStream()
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	data := mrand.NewChaCha8([32]byte{1}) // deterministic, and an io.Reader
	if _, err := io.Copy(io.MultiWriter(str, h), io.LimitReader(data, int64(size))); err != nil {
		t.Fatal(err)
	}
	if err := str.Close(); err != nil {
		t.Fatal(err)
	}
	want := [32]byte(h.Sum(nil))

	r := <-got
	took := time.Since(start)
	conn.CloseWithError(0, "")
	switch {
	case r.err != nil:
		t.Fatalf("server: %v", r.err)
	case r.n != int64(size):
		t.Fatalf("server read %d bytes, want %d", r.n, size)
	case r.sum != want:
		t.Fatal("SHA-256 of the received data differs from what was sent")
	}
	sa, sb := a.Stats(), b.Stats()
	t.Logf("client→server %+v", sa)
	t.Logf("server→client %+v", sb)
	if sa.Dropped == 0 && l.Loss > 0 {
		t.Error("the link lost no packet; the test proves nothing about loss")
	}
	return took
}

// A throwaway certificate for this file only; its dates cover synctest's
// fake clock (it starts in 2000) and the real one.
var testCert = sync.OnceValue(func() tls.Certificate {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "conntest"},
		DNSNames:     []string{"conntest"},
		NotBefore:    time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:     time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
})

func serverTLS() *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{testCert()}, NextProtos: []string{"conntest"}}
}

func clientTLS() *tls.Config {
	return &tls.Config{InsecureSkipVerify: true, ServerName: "conntest", NextProtos: []string{"conntest"}}
}
