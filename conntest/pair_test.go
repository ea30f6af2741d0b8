package conntest_test

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/quicconn/quicconn/conn"
	"github.com/quicconn/quicconn/conntest"
	"github.com/quicconn/quicconn/stream"
)

func TestNewPair(t *testing.T) {
	client, server := conntest.NewPair(t,
		conntest.WithLink(conntest.Link{Delay: 5 * time.Millisecond, Loss: 0.02, Seed: 7}),
		conntest.WithSettings(conn.Settings{DatagramReceiveEnabled: true}),
		conntest.WithALPN("pair-test"))
	if client.State() != conn.Connected || server.State() != conn.Connected {
		t.Fatalf("states %v %v", client.State(), server.State())
	}
	if client.NegotiatedALPN() != "pair-test" {
		t.Errorf("ALPN %q", client.NegotiatedALPN())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go func() {
		s, err := server.AcceptInboundStream(ctx)
		if err != nil {
			return
		}
		io.Copy(s, s)
		s.Close()
	}()
	s, err := client.OpenOutboundStream(ctx, stream.Bidirectional, false)
	if err != nil {
		t.Fatal(err)
	}
	s.Write([]byte("ping"))
	s.Close()
	b, err := io.ReadAll(s)
	if err != nil || string(b) != "ping" {
		t.Fatalf("echo %q %v", b, err)
	}
	// Cleanup closes everything; goleak in TestMain checks nothing is left.
}
