package reliability_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/quicconn/quicconn/conn"
	"github.com/quicconn/quicconn/conntest"
	qerr "github.com/quicconn/quicconn/errors"
	"github.com/quicconn/quicconn/stream"
)

// TestPartitionLongerThanIdleTimeout cuts the link for longer than the idle
// timeout: both sides end with reason IdleTimeout within IdleTimeout + 2s of
// the cut, and every call blocked on either side returns ConnectionLost.
func TestPartitionLongerThanIdleTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const idle = 3 * time.Second
		s := conn.Settings{IdleTimeout: idle, DatagramReceiveEnabled: true, PeerBidiStreamCount: 1}
		p := newPair(t, pairConfig{link: conntest.Link{Delay: 5 * time.Millisecond}, settings: s})
		ctx := context.Background() // no deadline: only the connection's end may wake the calls

		// Use up the client's one stream, so that the next open blocks at the limit.
		cs, err := p.client.OpenOutboundStream(ctx, stream.Bidirectional, false)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cs.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		ss, err := p.server.AcceptInboundStream(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := readFull(ss, make([]byte, 1)); err != nil {
			t.Fatal(err)
		}

		type blocked struct {
			name string
			call func() error
		}
		calls := []blocked{
			{"server AcceptInboundStream", func() error { _, err := p.server.AcceptInboundStream(ctx); return err }},
			{"server AcceptInboundUniStream", func() error { _, err := p.server.AcceptInboundUniStream(ctx); return err }},
			{"server stream Read", func() error { _, err := ss.Read(make([]byte, 10)); return err }},
			{"server ReceiveDatagram", func() error { _, err := p.server.ReceiveDatagram(ctx); return err }},
			{"client stream Read", func() error { _, err := cs.Read(make([]byte, 10)); return err }},
			{"client stream ReadChunk", func() error { _, err := cs.ReadChunk(ctx); return err }},
			{"client ReceiveDatagram", func() error { _, err := p.client.ReceiveDatagram(ctx); return err }},
			{"client OpenOutboundStream at the limit", func() error {
				_, err := p.client.OpenOutboundStream(ctx, stream.Bidirectional, false)
				return err
			}},
			{"client AcceptInboundStream", func() error { _, err := p.client.AcceptInboundStream(ctx); return err }},
		}
		type done struct {
			i   int
			err error
			at  time.Time
		}
		results := make(chan done, len(calls))
		for i, c := range calls {
			go func() {
				err := c.call()
				results <- done{i, err, time.Now()}
			}()
		}
		synctest.Wait() // every call is now blocked
		select {
		case r := <-results:
			t.Fatalf("%s returned before the partition: %v", calls[r.i].name, r.err)
		default:
		}

		cut := time.Now()
		p.a.Partition(true)
		limit := cut.Add(idle + 2*time.Second)
		for range calls {
			r := <-results
			name := calls[r.i].name
			if r.at.After(limit) {
				t.Errorf("%s returned %v after the cut, want within %v", name, r.at.Sub(cut), idle+2*time.Second)
			}
			if !errors.Is(r.err, qerr.ErrConnectionLost) {
				t.Errorf("%s: err = %v, want ErrConnectionLost", name, r.err)
				continue
			}
			if ce := connErr(t, name, r.err); ce.Reason != qerr.IdleTimeout {
				t.Errorf("%s: reason %v, want IdleTimeout", name, ce.Reason)
			}
		}
		for _, side := range []struct {
			name string
			c    *conn.Connection
		}{{"client", p.client}, {"server", p.server}} {
			select {
			case <-side.c.WatchShutdown():
			case <-time.After(time.Until(limit)):
				t.Fatalf("%s not ShutdownComplete within IdleTimeout+2s of the cut", side.name)
			}
			if ce := connErr(t, side.name+" Err()", side.c.Err()); ce.Reason != qerr.IdleTimeout {
				t.Errorf("%s: Err() reason %v, want IdleTimeout", side.name, ce.Reason)
			}
		}
		t.Logf("both sides idle-timed out %v after the cut (idle timeout %v)", time.Since(cut), idle)
	})
}

// TestPartitionShorterThanIdleTimeout cuts the link in the middle of a
// transfer for less than the idle timeout: the transfer resumes and
// completes with every stream's SHA-256 intact.
func TestPartitionShorterThanIdleTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const idle = 5 * time.Second
		p := newPair(t, pairConfig{
			link:     conntest.Link{Delay: 10 * time.Millisecond, Loss: 0.01, Seed: 2},
			settings: conn.Settings{IdleTimeout: idle},
		})
		// The cut lasts 2s of the 5s idle timeout. RFC 9002's PTO backoff
		// doubles the sender's probe interval during the cut, so the first
		// probe after a heal can come up to about the cut's length later; a
		// cut much above idle/2 can therefore end the connection by design.
		cutDone := make(chan time.Duration, 1)
		go func() {
			time.Sleep(300 * time.Millisecond)
			start := time.Now()
			p.a.Partition(true)
			time.Sleep(2 * time.Second)
			p.a.Partition(false)
			cutDone <- time.Since(start)
		}()
		d := transfer(t, p, 4, 4<<20)
		cutFor := <-cutDone
		if d < cutFor {
			t.Fatalf("transfer finished in %v, before the %v partition ended: it did not overlap the cut", d, cutFor)
		}
		if p.client.Err() != nil || p.server.Err() != nil {
			t.Fatalf("connection lost across a short partition: client %v, server %v", p.client.Err(), p.server.Err())
		}
		t.Logf("4 MiB over 4 streams with a %v partition: %v; link %+v", cutFor, d, p.a.Stats())
	})
}
