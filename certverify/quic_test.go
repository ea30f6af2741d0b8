package certverify

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	qerr "github.com/quicconn/quicconn/errors"
)

// cryptoBadCertificate is the QUIC error code for the TLS bad_certificate
// alert: 0x100 + 42 (RFC 9001, section 4.8).
const cryptoBadCertificate = 0x12a

// TestQUICRejection checks, through quic-go, what conn relies on: a
// rejection by our VerifyConnection reaches the peer as CRYPTO_ERROR 0x12a,
// and the rejecting side keeps the *CertificateError reachable with
// errors.As.
func TestQUICRejection(t *testing.T) {
	t.Parallel()
	server := generate(t, []string{"server.test"})
	client := generate(t, []string{"client.test"})
	stranger := generate(t, []string{"stranger.test"})
	hc, _ := ParseCertHash(client.Identity())
	hs, _ := ParseCertHash(server.Identity())
	server.TrustHashes(hc)
	client.TrustHashes(hs)
	stranger.TrustHashes(hs)
	pinsStranger := generate(t, []string{"client.test"})
	pinsStranger.TrustHashes(HashOf([]byte("not the server")))

	tests := []struct {
		name          string
		client        *Credential
		rejectingSide string
		rejectedHash  CertHash // the Hash the rejecting side's error carries
	}{
		{"accepted", client, "", CertHash{}},
		{"server rejects the client", stranger, "server", HashOf(stranger.Certificate.Certificate[0])},
		{"client rejects the server", pinsStranger, "client", HashOf(server.Certificate.Certificate[0])},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			// Transports of the test's own, closed at its end: those that
			// ListenAddr and DialAddr make close only once their last
			// connection has drained, which can outlast goleak's wait.
			srvTr, cliTr := newTransport(t), newTransport(t)
			ln, err := srvTr.ListenEarly(server.ServerTLSConfig([]string{"test"}), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()

			type result struct {
				conn *quic.Conn
				err  error
			}
			accepted := make(chan result, 1)
			go func() {
				c, err := ln.Accept(ctx)
				if err == nil {
					select {
					case <-c.HandshakeComplete():
					case <-c.Context().Done():
						err = context.Cause(c.Context())
					}
				}
				accepted <- result{c, err}
			}()
			cc, clientErr := cliTr.Dial(ctx, ln.Addr(), tt.client.ClientTLSConfig("", []string{"test"}), nil)
			if clientErr == nil {
				defer cc.CloseWithError(0, "")
			}
			srv := <-accepted
			if srv.err == nil {
				defer srv.conn.CloseWithError(0, "")
			}
			if clientErr == nil && tt.rejectingSide == "server" {
				// A TLS 1.3 client completes first; the alert follows.
				select {
				case <-cc.Context().Done():
					clientErr = context.Cause(cc.Context())
				case <-ctx.Done():
					t.Fatal("client connection outlived the server's rejection")
				}
			}

			rejecting, rejected := srv.err, clientErr
			switch tt.rejectingSide {
			case "":
				if clientErr != nil || srv.err != nil {
					t.Fatalf("client %v, server %v", clientErr, srv.err)
				}
				return
			case "client":
				rejecting, rejected = clientErr, srv.err
			}
			if ce, ok := errors.AsType[*qerr.CertificateError](rejecting); !ok {
				t.Errorf("rejecting side: %v is not a *CertificateError", rejecting)
			} else if ce.Hash != tt.rejectedHash || ce.Reason != reasonHashNotTrusted {
				t.Errorf("rejecting side: reason %q, hash %x; want %q, %x", ce.Reason, ce.Hash, reasonHashNotTrusted, tt.rejectedHash)
			}
			for side, err := range map[string]error{"rejecting": rejecting, "rejected": rejected} {
				te, ok := errors.AsType[*quic.TransportError](err)
				if !ok || te.ErrorCode != cryptoBadCertificate {
					t.Errorf("%s side: %v, want a TransportError with code 0x12a", side, err)
				}
			}
		})
	}
}

// newTransport returns a quic.Transport on a loopback socket, both closed
// when the test ends.
func newTransport(t *testing.T) *quic.Transport {
	t.Helper()
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	tr := &quic.Transport{Conn: udp}
	t.Cleanup(func() {
		tr.Close()
		udp.Close()
	})
	return tr
}
