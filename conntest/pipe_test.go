package conntest_test

import (
	"bytes"
	"errors"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/quicconn/quicconn/conntest"
)

func TestNewPipeDeliversBothWays(t *testing.T) {
	a, b := newPipe(t, conntest.Link{})
	for _, tc := range []struct {
		name     string
		from, to *conntest.PacketConn
		fromAddr string
	}{
		{"a to b", a, b, "127.0.0.1:1"},
		{"b to a", b, a, "127.0.0.2:1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.from.LocalAddr().String(); got != tc.fromAddr {
				t.Fatalf("LocalAddr = %s, want %s", got, tc.fromAddr)
			}
			if _, ok := tc.from.LocalAddr().(*net.UDPAddr); !ok {
				t.Fatalf("LocalAddr is a %T, want *net.UDPAddr", tc.from.LocalAddr())
			}
			msg := []byte("hello " + tc.name)
			n, err := tc.from.WriteTo(msg, tc.to.LocalAddr())
			if err != nil || n != len(msg) {
				t.Fatalf("WriteTo = %d, %v; want %d, nil", n, err, len(msg))
			}
			buf := make([]byte, 100)
			n, from, err := tc.to.ReadFrom(buf)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf[:n], msg) {
				t.Errorf("read %q, want %q", buf[:n], msg)
			}
			if from.String() != tc.fromAddr || from.Network() != "udp" {
				t.Errorf("from = %s/%s, want udp/%s", from.Network(), from, tc.fromAddr)
			}
		})
	}
}

func TestWriteTo(t *testing.T) {
	for _, tc := range []struct {
		name string
		// write does one WriteTo on a towards b, and reports the payload b
		// should read, or nil if it should read nothing.
		write       func(t *testing.T, a, b *conntest.PacketConn) []byte
		wantDropped uint64
	}{
		{
			name: "copies the payload so the caller may reuse it",
			write: func(t *testing.T, a, b *conntest.PacketConn) []byte {
				buf := []byte("original")
				a.WriteTo(buf, b.LocalAddr())
				copy(buf, "CHANGED!")
				return []byte("original")
			},
		},
		{
			name: "accepts an equal address of another type",
			write: func(t *testing.T, a, b *conntest.PacketConn) []byte {
				a.WriteTo([]byte("x"), &net.UDPAddr{IP: net.ParseIP("127.0.0.2"), Port: 1})
				return []byte("x")
			},
		},
		{
			name: "drops a packet to another address",
			write: func(t *testing.T, a, b *conntest.PacketConn) []byte {
				n, err := a.WriteTo([]byte("lost"), &net.UDPAddr{IP: net.ParseIP("127.0.0.3"), Port: 1})
				if n != 4 || err != nil {
					t.Errorf("WriteTo = %d, %v; want 4, nil", n, err)
				}
				return nil
			},
			wantDropped: 1,
		},
		{
			name: "drops a packet to the peer's IP on another port",
			write: func(t *testing.T, a, b *conntest.PacketConn) []byte {
				a.WriteTo([]byte("lost"), &net.UDPAddr{IP: net.ParseIP("127.0.0.2"), Port: 2})
				return nil
			},
			wantDropped: 1,
		},
		{
			name: "rejects a nil address",
			write: func(t *testing.T, a, b *conntest.PacketConn) []byte {
				var opErr *net.OpError
				if _, err := a.WriteTo([]byte("x"), nil); !errors.As(err, &opErr) {
					t.Errorf("WriteTo(nil addr) = %v, want a *net.OpError", err)
				}
				return nil
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				a, b := newPipe(t, conntest.Link{})
				want := tc.write(t, a, b)
				b.SetReadDeadline(time.Now().Add(time.Second))
				buf := make([]byte, 100)
				n, _, err := b.ReadFrom(buf)
				switch {
				case want == nil && !isTimeout(err):
					t.Errorf("ReadFrom = %q, %v; want a timeout", buf[:n], err)
				case want != nil && (err != nil || !bytes.Equal(buf[:n], want)):
					t.Errorf("ReadFrom = %q, %v; want %q", buf[:n], err, want)
				}
				if got := a.Stats().Dropped; got != tc.wantDropped {
					t.Errorf("Dropped = %d, want %d", got, tc.wantDropped)
				}
			})
		})
	}
}

func TestReadFromTruncatesLongPackets(t *testing.T) {
	a, b := newPipe(t, conntest.Link{})
	a.WriteTo([]byte("0123456789"), b.LocalAddr())
	a.WriteTo([]byte("next"), b.LocalAddr())
	buf := make([]byte, 4)
	for _, want := range []string{"0123", "next"} {
		n, _, err := b.ReadFrom(buf)
		if err != nil || string(buf[:n]) != want {
			t.Fatalf("ReadFrom = %q, %v; want %q", buf[:n], err, want)
		}
	}
}

func TestReceiveBufferIsBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := newPipe(t, conntest.Link{})
		if err := b.SetReadBuffer(-1); err == nil {
			t.Error("SetReadBuffer(-1) = nil, want an error")
		}
		if err := b.SetReadBuffer(10 * 100); err != nil {
			t.Fatal(err)
		}
		sendNumbered(t, a, b, 25, 100)
		got := recvNumbered(t, b, time.Second)
		if want := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}; !slices.Equal(indices(got), want) {
			t.Errorf("read %v, want %v", indices(got), want)
		}
		want := conntest.LinkStats{Sent: 25, Delivered: 10, Dropped: 15}
		if st := a.Stats(); st != want {
			t.Errorf("Stats = %+v, want %+v", st, want)
		}
		// Reading made room again.
		sendNumbered(t, a, b, 3, 100)
		if got := recvNumbered(t, b, time.Second); len(got) != 3 {
			t.Errorf("after draining, read %d packets, want 3", len(got))
		}
	})
}

func TestDeadlines(t *testing.T) {
	for _, tc := range []struct {
		name string
		// run acts on b (a is its peer) and returns how long it expects to
		// wait and the error it expects to be a timeout.
		run func(t *testing.T, a, b *conntest.PacketConn) (wantWait time.Duration, err error)
	}{
		{
			name: "read deadline in the past fails at once",
			run: func(t *testing.T, a, b *conntest.PacketConn) (time.Duration, error) {
				b.SetReadDeadline(time.Now().Add(-time.Second))
				_, _, err := b.ReadFrom(make([]byte, 10))
				return 0, err
			},
		},
		{
			name: "read deadline ends a blocked read",
			run: func(t *testing.T, a, b *conntest.PacketConn) (time.Duration, error) {
				b.SetReadDeadline(time.Now().Add(3 * time.Second))
				_, _, err := b.ReadFrom(make([]byte, 10))
				return 3 * time.Second, err
			},
		},
		{
			name: "read deadline moved while a read waits",
			run: func(t *testing.T, a, b *conntest.PacketConn) (time.Duration, error) {
				b.SetReadDeadline(time.Now().Add(time.Hour))
				go func() {
					time.Sleep(time.Second)
					b.SetReadDeadline(time.Now().Add(time.Second))
				}()
				_, _, err := b.ReadFrom(make([]byte, 10))
				return 2 * time.Second, err
			},
		},
		{
			name: "read deadline before a delayed packet",
			run: func(t *testing.T, a, b *conntest.PacketConn) (time.Duration, error) {
				a.SetLink(conntest.Link{Delay: 2 * time.Second})
				a.WriteTo([]byte("late"), b.LocalAddr())
				b.SetReadDeadline(time.Now().Add(time.Second))
				_, _, err := b.ReadFrom(make([]byte, 10))
				return time.Second, err
			},
		},
		{
			name: "SetDeadline sets the read deadline",
			run: func(t *testing.T, a, b *conntest.PacketConn) (time.Duration, error) {
				b.SetDeadline(time.Now().Add(time.Second))
				_, _, err := b.ReadFrom(make([]byte, 10))
				return time.Second, err
			},
		},
		{
			name: "write deadline in the past fails WriteTo",
			run: func(t *testing.T, a, b *conntest.PacketConn) (time.Duration, error) {
				b.SetWriteDeadline(time.Now())
				_, err := b.WriteTo([]byte("x"), a.LocalAddr())
				if st := b.Stats(); st.Sent != 0 {
					t.Errorf("a failed write counted as sent: %+v", st)
				}
				return 0, err
			},
		},
		{
			name: "SetDeadline sets the write deadline",
			run: func(t *testing.T, a, b *conntest.PacketConn) (time.Duration, error) {
				b.SetDeadline(time.Now().Add(time.Second))
				if _, err := b.WriteTo([]byte("x"), a.LocalAddr()); err != nil {
					t.Errorf("WriteTo before the deadline: %v", err)
				}
				time.Sleep(time.Second)
				_, err := b.WriteTo([]byte("x"), a.LocalAddr())
				return time.Second, err
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				a, b := newPipe(t, conntest.Link{})
				start := time.Now()
				wantWait, err := tc.run(t, a, b)
				if !isTimeout(err) {
					t.Fatalf("got error %v, want os.ErrDeadlineExceeded with Timeout() true", err)
				}
				if waited := time.Since(start); waited != wantWait {
					t.Errorf("failed after %v, want %v", waited, wantWait)
				}
				// Clearing the deadlines makes the conn usable again.
				b.SetDeadline(time.Time{})
				a.WriteTo([]byte("again"), b.LocalAddr())
				b.WriteTo([]byte("again"), a.LocalAddr())
				if _, _, err := b.ReadFrom(make([]byte, 10)); err != nil {
					t.Errorf("ReadFrom after clearing the deadline: %v", err)
				}
			})
		})
	}
}

func TestReadDeadlineClearedWhileWaiting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := newPipe(t, conntest.Link{})
		b.SetReadDeadline(time.Now().Add(time.Second))
		go func() {
			time.Sleep(500 * time.Millisecond)
			b.SetReadDeadline(time.Time{})
			time.Sleep(time.Second)
			a.WriteTo([]byte("x"), b.LocalAddr())
		}()
		start := time.Now()
		if _, _, err := b.ReadFrom(make([]byte, 10)); err != nil {
			t.Fatalf("ReadFrom: %v", err)
		}
		if waited := time.Since(start); waited != 1500*time.Millisecond {
			t.Errorf("read after %v, want 1.5s", waited)
		}
	})
}

func TestClose(t *testing.T) {
	for _, tc := range []struct {
		name string
		// run acts on the pipe and returns an error that must be
		// net.ErrClosed.
		run func(t *testing.T, a, b *conntest.PacketConn) error
	}{
		{
			name: "unblocks a waiting ReadFrom",
			run: func(t *testing.T, a, b *conntest.PacketConn) error {
				start := time.Now()
				go func() {
					time.Sleep(time.Second)
					b.Close()
				}()
				_, _, err := b.ReadFrom(make([]byte, 10))
				if waited := time.Since(start); waited != time.Second {
					t.Errorf("ReadFrom returned after %v, want 1s", waited)
				}
				return err
			},
		},
		{
			name: "fails a later ReadFrom even with packets buffered",
			run: func(t *testing.T, a, b *conntest.PacketConn) error {
				a.WriteTo([]byte("x"), b.LocalAddr())
				b.Close()
				_, _, err := b.ReadFrom(make([]byte, 10))
				return err
			},
		},
		{
			name: "fails a later WriteTo",
			run: func(t *testing.T, a, b *conntest.PacketConn) error {
				b.Close()
				_, err := b.WriteTo([]byte("x"), a.LocalAddr())
				return err
			},
		},
		{
			name: "twice fails the second time",
			run: func(t *testing.T, a, b *conntest.PacketConn) error {
				if err := b.Close(); err != nil {
					t.Errorf("first Close: %v", err)
				}
				return b.Close()
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				a, b := newPipe(t, conntest.Link{})
				err := tc.run(t, a, b)
				var opErr *net.OpError
				if !errors.Is(err, net.ErrClosed) || !errors.As(err, &opErr) {
					t.Errorf("got %v, want a *net.OpError wrapping net.ErrClosed", err)
				}
			})
		})
	}
}

func TestCloseDropsPacketsToTheClosedEnd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := newPipe(t, conntest.Link{Delay: 10 * time.Millisecond})
		a.WriteTo([]byte("in flight"), b.LocalAddr())
		b.Close()
		if _, err := a.WriteTo([]byte("after close"), b.LocalAddr()); err != nil {
			t.Errorf("WriteTo towards a closed peer: %v, want nil (UDP does not know)", err)
		}
		want := conntest.LinkStats{Sent: 2, Dropped: 2}
		if st := a.Stats(); st != want {
			t.Errorf("Stats = %+v, want %+v", st, want)
		}
	})
}

func TestRealTime(t *testing.T) {
	// The other tests run in synctest bubbles; this one checks that the
	// timers work on the real clock too.
	a, b := newPipe(t, conntest.Link{Delay: 20 * time.Millisecond})
	start := time.Now()
	a.WriteTo([]byte("x"), b.LocalAddr())
	if _, _, err := b.ReadFrom(make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 20*time.Millisecond || d > 2*time.Second {
		t.Errorf("delivery took %v, want 20ms (or a little more)", d)
	}

	b.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
	if _, _, err := b.ReadFrom(make([]byte, 10)); !isTimeout(err) {
		t.Errorf("ReadFrom = %v, want a timeout", err)
	}
	b.SetReadDeadline(time.Time{})

	go func() {
		time.Sleep(30 * time.Millisecond)
		b.Close()
	}()
	if _, _, err := b.ReadFrom(make([]byte, 10)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("ReadFrom = %v, want net.ErrClosed", err)
	}
}

func TestConcurrentUse(t *testing.T) {
	// Run with -race. Writers, readers and control calls on both ends at
	// once; at the end every packet is accounted for.
	a, b := conntest.NewPipe(conntest.Link{
		Loss: 0.1, Duplicate: 0.1, Reorder: 0.1,
		Delay: time.Millisecond, Jitter: time.Millisecond, Seed: 7,
	})
	const writers, perWriter = 4, 500
	var readers sync.WaitGroup
	var read [2]atomic.Uint64
	for i, c := range []*conntest.PacketConn{a, b} {
		for range 2 {
			readers.Go(func() {
				buf := make([]byte, 1500)
				for {
					if _, _, err := c.ReadFrom(buf); err != nil {
						if !errors.Is(err, net.ErrClosed) {
							t.Errorf("ReadFrom: %v", err)
						}
						return
					}
					read[i].Add(1)
				}
			})
		}
	}
	var wg sync.WaitGroup
	for _, c := range []*conntest.PacketConn{a, b} {
		peer := b
		if c == b {
			peer = a
		}
		for range writers {
			wg.Go(func() {
				buf := make([]byte, 1200)
				for range perWriter {
					if _, err := c.WriteTo(buf, peer.LocalAddr()); err != nil {
						t.Errorf("WriteTo: %v", err)
						return
					}
				}
			})
		}
		wg.Go(func() {
			for i := range 50 {
				c.SetLink(conntest.Link{Loss: 0.1, Delay: time.Duration(i%3) * time.Millisecond, Seed: int64(i % 2)})
				c.Partition(i%10 == 9)
				_ = c.Stats()
				c.SetReadDeadline(time.Time{})
				time.Sleep(100 * time.Microsecond)
			}
			c.Partition(false)
		})
	}
	wg.Wait()
	time.Sleep(20 * time.Millisecond) // let the last packets arrive
	a.Close()
	b.Close()
	readers.Wait()
	for i, c := range []*conntest.PacketConn{b, a} { // read[i] counts what the peer of c read
		st := c.Stats()
		if got := read[i].Load(); got > st.Delivered || got == 0 {
			t.Errorf("read %d packets, Delivered = %d", got, st.Delivered)
		}
		if st.Sent != writers*perWriter {
			t.Errorf("Sent = %d, want %d", st.Sent, writers*perWriter)
		}
		if st.Sent+st.Duplicated != st.Delivered+st.Dropped {
			t.Errorf("Stats %+v: Sent+Duplicated != Delivered+Dropped after both ends closed", st)
		}
	}
}

func TestPipeStartsNoGoroutine(t *testing.T) {
	a, b := newPipe(t, conntest.Link{Delay: time.Hour, Bandwidth: 1000, Jitter: time.Second, Reorder: 0.5})
	sendNumbered(t, a, b, 10, 100)
	sendNumbered(t, b, a, 10, 100)
	a.Partition(true)
	a.Partition(false)
	sendNumbered(t, a, b, 10, 100)
	// Packets are in flight for an hour, and nothing runs to deliver them.
	goleak.VerifyNone(t)
}

func TestPassedReadDeadlineWinsOverWaitingPackets(t *testing.T) {
	// quic-go's Transport.Close stops its read loop this way.
	synctest.Test(t, func(t *testing.T) {
		a, b := newPipe(t, conntest.Link{})
		sendNumbered(t, a, b, 3, 10)
		b.SetReadDeadline(time.Now())
		if _, _, err := b.ReadFrom(make([]byte, 10)); !isTimeout(err) {
			t.Errorf("ReadFrom = %v, want a timeout", err)
		}
		b.SetReadDeadline(time.Time{})
		if got := recvNumbered(t, b, time.Second); len(got) != 3 {
			t.Errorf("after clearing the deadline read %d packets, want 3", len(got))
		}
	})
}
