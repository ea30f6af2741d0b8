package conntest_test

import (
	"context"
	"errors"
	"io"
	"testing"
	"testing/synctest"
	"time"

	"github.com/quicconn/quicconn/conn"
	"github.com/quicconn/quicconn/conntest"
	qerr "github.com/quicconn/quicconn/errors"
	"github.com/quicconn/quicconn/stream"
)

// TestNewPairInSynctest runs whole quicconn connections inside a synctest
// bubble: round trips take exactly the link's delay, and a 30-second idle
// timeout costs no wall time and ends on time on the fake clock.
func TestNewPairInSynctest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const idle = 30 * time.Second
		client, server := conntest.NewPair(t,
			conntest.WithLink(conntest.Link{Delay: 20 * time.Millisecond}),
			conntest.WithSettings(conn.Settings{IdleTimeout: idle}))

		ctx := context.Background()
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
		start := time.Now()
		s.Write([]byte("ping"))
		s.Close()
		if b, err := io.ReadAll(s); err != nil || string(b) != "ping" {
			t.Fatalf("echo = %q, %v", b, err)
		}
		if rtt := time.Since(start); rtt < 40*time.Millisecond || rtt > 100*time.Millisecond {
			t.Errorf("echo took %v on the fake clock, want about one 40ms round trip", rtt)
		}

		// Nothing is sent from here on and keep-alives are off, so both
		// sides time out one idle period after the last packet.
		quiet := time.Now()
		<-client.WatchShutdown()
		<-server.WatchShutdown()
		elapsed := time.Since(quiet)
		if elapsed < idle-time.Second || elapsed > idle+2*time.Second {
			t.Errorf("idle timeout after %v of fake time, want %v", elapsed, idle)
		}
		for _, c := range []*conn.Connection{client, server} {
			var ce *qerr.ConnectionError
			if !errors.As(c.Err(), &ce) || ce.Reason != qerr.IdleTimeout {
				t.Errorf("Err = %v, want IdleTimeout", c.Err())
			}
		}
	})
}
