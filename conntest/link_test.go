package conntest_test

import (
	"math"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/quicconn/quicconn/conntest"
)

// sendBurst sends n numbered packets of 100 bytes from a to b at one instant
// and returns what b read within 10 s, with a's stats. b's receive buffer is
// large enough that it never drops.
func sendBurst(t *testing.T, l conntest.Link, n int) ([]arrival, conntest.LinkStats) {
	t.Helper()
	a, b := newPipe(t, l)
	b.SetReadBuffer(64 << 20)
	sendNumbered(t, a, b, n, 100)
	got := recvNumbered(t, b, 10*time.Second)
	st := a.Stats()
	if st.Sent != uint64(n) || st.Sent+st.Duplicated != st.Delivered+st.Dropped || uint64(len(got)) != st.Delivered {
		t.Errorf("Stats %+v do not add up for %d packets sent and %d read", st, n, len(got))
	}
	return got, st
}

func TestImpairments(t *testing.T) {
	for _, tc := range []struct {
		name  string
		link  conntest.Link
		n     int
		check func(t *testing.T, got []int, st conntest.LinkStats)
	}{
		{
			name: "a perfect link delivers everything in order",
			n:    1000,
			check: func(t *testing.T, got []int, st conntest.LinkStats) {
				if want := seq(1000); !slices.Equal(got, want) {
					t.Errorf("read %v..., want 0..999 in order", got[:min(len(got), 10)])
				}
			},
		},
		{
			name: "loss drops about Loss of the packets",
			link: conntest.Link{Loss: 0.05, Seed: 1},
			n:    10000,
			check: func(t *testing.T, got []int, st conntest.LinkStats) {
				near(t, "Dropped", st.Dropped, 0.05*10000)
				if !isStrictlyIncreasing(got) {
					t.Error("loss reordered the packets")
				}
			},
		},
		{
			name: "loss 1 drops everything",
			link: conntest.Link{Loss: 1},
			n:    1000,
			check: func(t *testing.T, got []int, st conntest.LinkStats) {
				if len(got) != 0 || st.Dropped != 1000 {
					t.Errorf("read %d, dropped %d; want 0, 1000", len(got), st.Dropped)
				}
			},
		},
		{
			name: "duplicate delivers about Duplicate extra copies",
			link: conntest.Link{Duplicate: 0.1, Jitter: time.Millisecond, Seed: 2},
			n:    10000,
			check: func(t *testing.T, got []int, st conntest.LinkStats) {
				near(t, "Duplicated", st.Duplicated, 0.1*10000)
				counts := make([]int, 10000)
				for _, i := range got {
					counts[i]++
				}
				twice := 0
				for i, c := range counts {
					switch c {
					case 1:
					case 2:
						twice++
					default:
						t.Fatalf("packet %d read %d times", i, c)
					}
				}
				if uint64(twice) != st.Duplicated {
					t.Errorf("%d packets read twice, Duplicated = %d", twice, st.Duplicated)
				}
				if !slices.IsSorted(got) {
					t.Error("a duplicate overtook a later packet")
				}
			},
		},
		{
			name: "reorder lets later packets overtake",
			link: conntest.Link{Reorder: 0.1, Delay: 5 * time.Millisecond, Seed: 3},
			n:    10000,
			check: func(t *testing.T, got []int, st conntest.LinkStats) {
				near(t, "Reordered", st.Reordered, 0.1*10000)
				if !slices.Equal(slices.Sorted(slices.Values(got)), seq(10000)) {
					t.Error("reordering lost or duplicated packets")
				}
				// A held packet is overtaken by every packet sent at the same
				// instant after it, so each one is an out-of-order arrival.
				late := 0
				for i := 1; i < len(got); i++ {
					if got[i] < got[i-1] {
						late++
					}
				}
				if late == 0 || uint64(late) > st.Reordered {
					t.Errorf("%d packets arrived after a later one, want 1..%d", late, st.Reordered)
				}
			},
		},
		{
			name: "jitter alone keeps the order",
			link: conntest.Link{Delay: 5 * time.Millisecond, Jitter: 5 * time.Millisecond, Seed: 4},
			n:    1000,
			check: func(t *testing.T, got []int, st conntest.LinkStats) {
				if !slices.Equal(got, seq(1000)) {
					t.Error("jitter reordered or lost packets")
				}
			},
		},
		{
			name: "all impairments together account for every packet",
			link: conntest.Link{Loss: 0.05, Duplicate: 0.05, Reorder: 0.05, Delay: time.Millisecond, Jitter: time.Millisecond, Seed: 5},
			n:    10000,
			check: func(t *testing.T, got []int, st conntest.LinkStats) {
				near(t, "Dropped", st.Dropped, 0.05*10000) // loss comes before duplication
				near(t, "Duplicated", st.Duplicated, 0.05*9500)
				near(t, "Reordered", st.Reordered, 0.05*9500)
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				got, st := sendBurst(t, tc.link, tc.n)
				tc.check(t, indices(got), st)
			})
		})
	}
}

func TestSeedDeterminesDecisions(t *testing.T) {
	// run sends 2000 packets each way and returns what each end read.
	run := func(l conntest.Link) (ab, ba []int) {
		synctest.Test(t, func(t *testing.T) {
			a, b := newPipe(t, l)
			sendNumbered(t, a, b, 2000, 100)
			sendNumbered(t, b, a, 2000, 100)
			ab = indices(recvNumbered(t, b, 10*time.Second))
			ba = indices(recvNumbered(t, a, time.Millisecond))
		})
		return ab, ba
	}
	l := conntest.Link{Loss: 0.05, Duplicate: 0.05, Reorder: 0.05, Delay: time.Millisecond, Jitter: time.Millisecond, Seed: 42}
	ab1, ba1 := run(l)
	ab2, ba2 := run(l)
	if !slices.Equal(ab1, ab2) || !slices.Equal(ba1, ba2) {
		t.Error("the same Seed gave different packets")
	}
	if slices.Equal(ab1, ba1) {
		t.Error("both directions made the same decisions")
	}
	l.Seed = 43
	if ab3, _ := run(l); slices.Equal(ab1, ab3) {
		t.Error("Seed 43 gave the same packets as Seed 42")
	}
	// Loss decisions do not depend on the other settings.
	lossOnly, _ := run(conntest.Link{Loss: 0.05, Seed: 42})
	withJitter, _ := run(conntest.Link{Loss: 0.05, Jitter: 3 * time.Millisecond, Seed: 42})
	if !slices.Equal(lossOnly, withJitter) {
		t.Error("turning on Jitter changed which packets were lost")
	}
}

func TestDelayIsExact(t *testing.T) {
	for _, delay := range []time.Duration{0, time.Millisecond, 10 * time.Millisecond, 250 * time.Millisecond} {
		t.Run(delay.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				a, b := newPipe(t, conntest.Link{Delay: delay})
				for _, dir := range [][2]*conntest.PacketConn{{a, b}, {b, a}} {
					start := time.Now()
					dir[0].WriteTo([]byte("ping"), dir[1].LocalAddr())
					if _, _, err := dir[1].ReadFrom(make([]byte, 10)); err != nil {
						t.Fatal(err)
					}
					if got := time.Since(start); got != delay {
						t.Errorf("%v → %v took %v, want %v", dir[0].LocalAddr(), dir[1].LocalAddr(), got, delay)
					}
				}
			})
		})
	}
}

func TestJitterStaysWithinBounds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const delay, jitter = 10 * time.Millisecond, 5 * time.Millisecond
		a, b := newPipe(t, conntest.Link{Delay: delay, Jitter: jitter, Seed: 9})
		lo, hi := time.Duration(math.MaxInt64), time.Duration(0)
		for range 500 {
			start := time.Now()
			a.WriteTo([]byte("ping"), b.LocalAddr())
			if _, _, err := b.ReadFrom(make([]byte, 10)); err != nil {
				t.Fatal(err)
			}
			d := time.Since(start)
			lo, hi = min(lo, d), max(hi, d)
			time.Sleep(20 * time.Millisecond)
		}
		if lo < delay || hi >= delay+jitter {
			t.Errorf("delays in [%v, %v], want within [%v, %v)", lo, hi, delay, delay+jitter)
		}
		if lo > delay+jitter/10 || hi < delay+jitter*9/10 {
			t.Errorf("delays in [%v, %v] do not spread over [%v, %v)", lo, hi, delay, delay+jitter)
		}
	})
}

func TestMTU(t *testing.T) {
	for _, tc := range []struct {
		name      string
		mtu, size int
		delivered bool
	}{
		{"below the MTU", 1200, 1199, true},
		{"at the MTU", 1200, 1200, true},
		{"above the MTU", 1200, 1201, false},
		{"MTU 0 is no limit", 0, 65000, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				a, b := newPipe(t, conntest.Link{MTU: tc.mtu})
				if n, err := a.WriteTo(make([]byte, tc.size), b.LocalAddr()); n != tc.size || err != nil {
					t.Fatalf("WriteTo = %d, %v; want %d, nil", n, err, tc.size)
				}
				got := recvNumbered(t, b, time.Second)
				if delivered := len(got) == 1; delivered != tc.delivered {
					t.Errorf("delivered = %v, want %v", delivered, tc.delivered)
				}
				if dropped := a.Stats().Dropped == 1; dropped == tc.delivered {
					t.Errorf("Dropped = %d", a.Stats().Dropped)
				}
			})
		})
	}
}

func TestBandwidth(t *testing.T) {
	for _, tc := range []struct {
		name     string
		link     conntest.Link
		n        int           // packets of 1000 bytes
		interval time.Duration // between writes; 0 writes them all at once
		// The first wantDelivered packets arrive, packet i at
		// (i+1)*1000/Bandwidth after the first write, plus the Delay.
		wantDelivered int
		wantLast      time.Duration
	}{
		{
			name:          "1 MB at 1 MB/s takes 1 s",
			link:          conntest.Link{Bandwidth: 1e6},
			n:             1000,
			wantDelivered: 1000,
			wantLast:      time.Second,
		},
		{
			name:          "delay adds to the transmission time",
			link:          conntest.Link{Bandwidth: 1e6, Delay: 10 * time.Millisecond},
			n:             1000,
			wantDelivered: 1000,
			wantLast:      time.Second + 10*time.Millisecond,
		},
		{
			name: "the queue holds at most MaxQueueDelay of packets",
			link: conntest.Link{Bandwidth: 1e6},
			n:    2000,
			// packet i waits i ms to start, so packets 0..1000 fit
			wantDelivered: 1001,
			wantLast:      1001 * time.Millisecond,
		},
		{
			name:          "a sender at the link rate loses nothing",
			link:          conntest.Link{Bandwidth: 1e6},
			n:             3000,
			interval:      time.Millisecond,
			wantDelivered: 3000,
			wantLast:      3 * time.Second,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				a, b := newPipe(t, tc.link)
				b.SetReadBuffer(64 << 20)
				start := time.Now()
				if tc.interval == 0 {
					sendNumbered(t, a, b, tc.n, 1000)
				} else {
					go func() {
						for range tc.n {
							sendNumbered(t, a, b, 1, 1000)
							time.Sleep(tc.interval)
						}
					}()
				}
				got := recvNumbered(t, b, 10*time.Second)
				if len(got) != tc.wantDelivered {
					t.Fatalf("delivered %d packets, want %d", len(got), tc.wantDelivered)
				}
				if last := got[len(got)-1].at.Sub(start); last != tc.wantLast {
					t.Errorf("last packet arrived after %v, want %v", last, tc.wantLast)
				}
				if tc.interval == 0 {
					for i, g := range got {
						want := time.Duration(i+1)*time.Millisecond + tc.link.Delay
						if g.index != i || g.at.Sub(start) != want {
							t.Fatalf("packet #%d: %d after %v, want %d after %v", i, g.index, g.at.Sub(start), i, want)
						}
					}
				}
				if st := a.Stats(); st.Dropped != uint64(tc.n-tc.wantDelivered) {
					t.Errorf("Dropped = %d, want %d", st.Dropped, tc.n-tc.wantDelivered)
				}
			})
		})
	}
}

func TestPartition(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := newPipe(t, conntest.Link{Delay: 10 * time.Millisecond})
		// exchange sends one packet each way and reports which arrived.
		exchange := func() (ab, ba bool) {
			a.WriteTo([]byte("a→b"), b.LocalAddr())
			b.WriteTo([]byte("b→a"), a.LocalAddr())
			return len(recvNumbered(t, b, time.Second)) == 1, len(recvNumbered(t, a, time.Millisecond)) == 1
		}
		if ab, ba := exchange(); !ab || !ba {
			t.Fatalf("before the partition: delivered a→b %v, b→a %v", ab, ba)
		}

		a.WriteTo([]byte("arrived"), b.LocalAddr())
		time.Sleep(20 * time.Millisecond)
		a.WriteTo([]byte("in flight"), b.LocalAddr())
		b.Partition(true)
		if got := recvNumbered(t, b, time.Second); len(got) != 1 {
			t.Errorf("after the cut b read %d packets, want only the one that had arrived", len(got))
		}
		if ab, ba := exchange(); ab || ba {
			t.Errorf("during the partition: delivered a→b %v, b→a %v", ab, ba)
		}

		a.Partition(false)
		if ab, ba := exchange(); !ab || !ba {
			t.Errorf("after healing: delivered a→b %v, b→a %v", ab, ba)
		}
		wantA := conntest.LinkStats{Sent: 5, Delivered: 3, Dropped: 2}
		wantB := conntest.LinkStats{Sent: 3, Delivered: 2, Dropped: 1}
		if st := a.Stats(); st != wantA {
			t.Errorf("a.Stats() = %+v, want %+v", st, wantA)
		}
		if st := b.Stats(); st != wantB {
			t.Errorf("b.Stats() = %+v, want %+v", st, wantB)
		}
	})
}

func TestSetLink(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := newPipe(t, conntest.Link{})

		a.SetLink(conntest.Link{Loss: 1})
		sendNumbered(t, a, b, 10, 10)
		sendNumbered(t, b, a, 10, 10)
		if ab, ba := recvNumbered(t, b, time.Second), recvNumbered(t, a, time.Millisecond); len(ab) != 0 || len(ba) != 10 {
			t.Errorf("with Loss 1 on a: read %d a→b and %d b→a, want 0 and 10", len(ab), len(ba))
		}

		a.SetLink(conntest.Link{Delay: 50 * time.Millisecond})
		start := time.Now()
		sendNumbered(t, a, b, 1, 10)
		a.SetLink(conntest.Link{}) // the packet in flight keeps its delay...
		sendNumbered(t, a, b, 1, 10)
		got := recvNumbered(t, b, time.Second)
		if len(got) != 2 || got[0].at.Sub(start) != 50*time.Millisecond {
			t.Fatalf("read %v, want 2 packets, the first after 50ms", got)
		}
		// ...and the next one does not overtake it.
		if got[1].at != got[0].at {
			t.Errorf("second packet arrived after %v, want right behind the first", got[1].at.Sub(start))
		}
	})
}

func TestSetLinkSeedRestartsTheRandomSource(t *testing.T) {
	lossy := conntest.Link{Loss: 0.5, Seed: 3}
	var fresh, switched []int
	synctest.Test(t, func(t *testing.T) {
		a, b := newPipe(t, lossy)
		sendNumbered(t, a, b, 200, 10)
		fresh = indices(recvNumbered(t, b, time.Second))
	})
	synctest.Test(t, func(t *testing.T) {
		a, b := newPipe(t, conntest.Link{Loss: 0.5, Seed: 9})
		sendNumbered(t, a, b, 50, 10)
		a.SetLink(lossy)
		recvNumbered(t, b, time.Second)
		sendNumbered(t, a, b, 200, 10)
		switched = indices(recvNumbered(t, b, time.Second))
	})
	if !slices.Equal(fresh, switched) {
		t.Error("after SetLink with a new Seed the drops differ from a fresh pipe with that Seed")
	}
}

func TestInvalidLinkPanics(t *testing.T) {
	for _, tc := range []struct {
		name string
		link conntest.Link
	}{
		{"Loss above 1", conntest.Link{Loss: 5}},
		{"negative Loss", conntest.Link{Loss: -0.1}},
		{"NaN Duplicate", conntest.Link{Duplicate: math.NaN()}},
		{"Reorder above 1", conntest.Link{Reorder: 1.5}},
		{"negative Delay", conntest.Link{Delay: -time.Millisecond}},
		{"negative Jitter", conntest.Link{Jitter: -time.Millisecond}},
		{"negative MTU", conntest.Link{MTU: -1}},
		{"negative Bandwidth", conntest.Link{Bandwidth: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mustPanic(t, "NewPipe", func() { conntest.NewPipe(tc.link) })
			a, _ := newPipe(t, conntest.Link{})
			mustPanic(t, "SetLink", func() { a.SetLink(tc.link) })
		})
	}
}

func mustPanic(t *testing.T, what string, f func()) {
	t.Helper()
	defer func() {
		if recover() == nil {
			t.Errorf("%s did not panic", what)
		}
	}()
	f()
}

// near fails unless got is within 4.5 standard deviations of the binomial
// mean want (n*p with p ≤ 0.1, so variance ≈ want).
func near(t *testing.T, what string, got uint64, want float64) {
	t.Helper()
	if tol := 4.5 * math.Sqrt(want); math.Abs(float64(got)-want) > tol {
		t.Errorf("%s = %d, want %.0f ± %.0f", what, got, want, tol)
	}
}

func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

func isStrictlyIncreasing(s []int) bool {
	for i := 1; i < len(s); i++ {
		if s[i] <= s[i-1] {
			return false
		}
	}
	return true
}
