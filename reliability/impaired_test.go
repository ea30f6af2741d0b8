package reliability_test

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/quicconn/quicconn/conn"
	"github.com/quicconn/quicconn/conntest"
	"github.com/quicconn/quicconn/stream"
)

// badLink is the impaired link of issue #6: 5% loss, 20 ms delay, 10%
// reordering and 1% duplication, each way.
var badLink = conntest.Link{Loss: 0.05, Delay: 20 * time.Millisecond, Reorder: 0.10, Duplicate: 0.01, Seed: 6}

// transfer sends total bytes from the client to the server over n
// concurrent streams and checks each stream's SHA-256 at the server. It
// returns how long the transfer took on the test's clock.
func transfer(t *testing.T, p *pair, n, total int) time.Duration {
	t.Helper()
	per := total / n
	want := make([][32]byte, n)
	payloads := make([][]byte, n)
	for i := range n {
		payloads[i] = pattern(i, per)
		want[i] = sha256.Sum256(payloads[i])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	start := time.Now()

	type result struct {
		idx int
		sum [32]byte
		n   int64
		err error
	}
	results := make(chan result, n)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // server: accept n streams, hash each
		defer wg.Done()
		for range n {
			s, err := p.server.AcceptInboundStream(ctx)
			if err != nil {
				results <- result{idx: -1, err: err}
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				var hdr [4]byte
				if _, err := readFull(s, hdr[:]); err != nil {
					results <- result{idx: -1, err: err}
					return
				}
				sum, m, err := readAllHash(s)
				results <- result{int(binary.BigEndian.Uint32(hdr[:])), sum, m, err}
				s.Close()
			}()
		}
	}()
	sendErrs := make(chan error, n)
	for i := range n {
		go func() {
			s, err := p.client.OpenOutboundStream(ctx, stream.Bidirectional, false)
			if err != nil {
				sendErrs <- err
				return
			}
			var hdr [4]byte
			binary.BigEndian.PutUint32(hdr[:], uint32(i))
			_, err = s.WriteChunks([][]byte{hdr[:], payloads[i]}, true)
			sendErrs <- err
		}()
	}
	for range n {
		if err := <-sendErrs; err != nil {
			t.Fatalf("send: %v", err)
		}
	}
	seen := make(map[int]bool)
	for range n {
		r := <-results
		if r.err != nil {
			t.Fatalf("receive: %v", r.err)
		}
		if r.idx < 0 || r.idx >= n || seen[r.idx] {
			t.Fatalf("stream header %d unexpected", r.idx)
		}
		seen[r.idx] = true
		if r.n != int64(per) || r.sum != want[r.idx] {
			t.Errorf("stream %d: got %d bytes sha256 %x, want %d bytes %x", r.idx, r.n, r.sum[:6], per, want[r.idx][:6])
		}
	}
	elapsed := time.Since(start)
	wg.Wait()
	return elapsed
}

func readFull(s *stream.Stream, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := s.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// TestImpairedLinkStreamsArriveIntact sends 64 MiB over 8 concurrent
// streams through loss, delay, reordering and duplication, in a synctest
// bubble so that the delays cost no wall time (about 5 minutes of fake
// time take some 20 s of CPU with -race), and checks every stream's
// SHA-256. -soak repeats it with two more link seeds.
func TestImpairedLinkStreamsArriveIntact(t *testing.T) {
	const total = 64 << 20
	seeds := []int64{badLink.Seed}
	if *soak {
		seeds = append(seeds, 106, 206)
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("seed %d", seed), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				link := badLink
				link.Seed = seed
				p := newPair(t, pairConfig{link: link, settings: conn.Settings{IdleTimeout: time.Minute}})
				d := transfer(t, p, 8, total)
				st := p.a.Stats()
				t.Logf("%d MiB over 8 streams: %v on the fake clock; client→server link: %+v; client stats lost=%d",
					total>>20, d, st, p.client.Stats().PacketsLost)
				if st.Dropped == 0 || st.Reordered == 0 || st.Duplicated == 0 {
					t.Errorf("link impairments did not happen: %+v", st)
				}
			})
		})
	}
}

// TestImpairedLinkDatagramsAtMostOnce sends 10,000 datagrams, each carrying
// its index and a CRC, through 5% loss with reordering and duplication: each
// arrives at most once and none is corrupted.
func TestImpairedLinkDatagramsAtMostOnce(t *testing.T) {
	const count = 10000
	synctest.Test(t, func(t *testing.T) {
		link := conntest.Link{Loss: 0.05, Delay: 5 * time.Millisecond, Reorder: 0.10, Duplicate: 0.01, Seed: 7}
		p := newPair(t, pairConfig{link: link, settings: conn.Settings{
			DatagramReceiveEnabled: true, DatagramQueueLen: count, IdleTimeout: time.Minute,
		}})
		for i := range count {
			b := make([]byte, 64)
			binary.BigEndian.PutUint32(b, uint32(i))
			copy(b[4:60], pattern(i, 56))
			binary.BigEndian.PutUint32(b[60:], crc32.ChecksumIEEE(b[:60]))
			if err := p.client.SendDatagram(b); err != nil {
				t.Fatalf("SendDatagram %d: %v", i, err)
			}
			if i%50 == 49 {
				time.Sleep(time.Millisecond) // pace, so quic-go's send queue drains
			}
		}
		time.Sleep(time.Second) // let everything in flight land
		seen := make([]bool, count)
		got := 0
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			b, err := p.server.ReceiveDatagram(ctx)
			cancel()
			if errors.Is(err, context.DeadlineExceeded) {
				break
			}
			if err != nil {
				t.Fatalf("ReceiveDatagram: %v", err)
			}
			if len(b) != 64 || crc32.ChecksumIEEE(b[:60]) != binary.BigEndian.Uint32(b[60:]) {
				t.Fatalf("corrupted datagram: %x", b)
			}
			i := binary.BigEndian.Uint32(b)
			if i >= count {
				t.Fatalf("datagram index %d out of range", i)
			}
			if seen[i] {
				t.Fatalf("datagram %d delivered twice", i)
			}
			seen[i] = true
			got++
		}
		st := p.server.Stats()
		t.Logf("received %d of %d datagrams; server stats received=%d dropped=%d; link %+v",
			got, count, st.DatagramsReceived, st.DatagramsDropped, p.a.Stats())
		if got < count*80/100 {
			t.Errorf("only %d of %d datagrams arrived through 5%% loss", got, count)
		}
	})
}

// TestMTU1200 runs a handshake, a stream transfer and a maximum-size datagram
// over a link whose MTU is 1200 bytes of UDP payload, the least QUIC allows.
func TestMTU1200(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		settings := conn.Settings{DatagramReceiveEnabled: true, HandshakeTimeout: 5 * time.Second}
		p := listenPipe(t, pairConfig{link: conntest.Link{MTU: 1200, Delay: time.Millisecond}, settings: settings})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		errc := make(chan error, 1)
		go func() { errc <- p.client.Start(ctx, p.cfg, "127.0.0.2", 1) }()
		if err := <-errc; err != nil {
			t.Fatalf("handshake over a 1200-byte MTU: %v (link %+v)", err, p.a.Stats())
		}
		var err error
		if p.server, err = p.ln.Accept(ctx); err != nil {
			t.Fatal(err)
		}
		if err := p.server.Accept(ctx); err != nil {
			t.Fatal(err)
		}
		transfer(t, p, 2, 1<<20)
		max := p.client.MaxDatagramSize()
		if max <= 0 || max >= 1200 {
			t.Fatalf("MaxDatagramSize = %d over a 1200-byte MTU", max)
		}
		msg := pattern(1, max)
		if err := p.client.SendDatagram(msg); err != nil {
			t.Fatalf("SendDatagram(%d bytes): %v", max, err)
		}
		got, err := p.server.ReceiveDatagram(ctx)
		if err != nil || len(got) != max {
			t.Fatalf("ReceiveDatagram = %d bytes, %v; want %d", len(got), err, max)
		}
	})
}

// TestBandwidthCapRespected measures the goodput of a bulk transfer over a
// 10 MB/s link: it stays within 10% of the cap.
func TestBandwidthCapRespected(t *testing.T) {
	const rate = 10_000_000
	size := 16 << 20
	if *soak {
		size = 64 << 20
	}
	synctest.Test(t, func(t *testing.T) {
		p := newPair(t, pairConfig{link: conntest.Link{Bandwidth: rate, Delay: 10 * time.Millisecond}})
		d := transfer(t, p, 1, size)
		goodput := float64(size) / d.Seconds()
		t.Logf("%d MiB in %v: goodput %.2f MB/s (cap %.0f MB/s); link %+v", size>>20, d, goodput/1e6, rate/1e6, p.a.Stats())
		if goodput > rate*1.10 || goodput < rate*0.90 {
			t.Errorf("goodput %.2f MB/s, want within 10%% of %.0f MB/s", goodput/1e6, rate/1e6)
		}
	})
}
