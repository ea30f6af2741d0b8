package gate

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestNew(t *testing.T) {
	for _, set := range []bool{false, true} {
		g := New(set)
		if got := g.Lock(); got != set {
			t.Errorf("New(%v).Lock() = %v, want %v", set, got, set)
		}
		g.Unlock(set)
	}
}

func TestLockExcludes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := New(false)
		g.Lock()
		var acquired, sawSet bool
		go func() {
			sawSet = g.Lock()
			acquired = true
			g.Unlock(false)
		}()
		synctest.Wait()
		if acquired {
			t.Fatal("Lock acquired a held gate")
		}
		g.Unlock(true)
		synctest.Wait()
		if !acquired || !sawSet {
			t.Fatalf("after Unlock(true): acquired = %v, set = %v; want true, true", acquired, sawSet)
		}
	})
}

func TestWaitAndLockWaitsForSet(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := New(false)
		done := false
		go func() {
			set, err := g.WaitAndLock(context.Background())
			if !set || err != nil {
				t.Errorf("WaitAndLock = %v, %v; want true, nil", set, err)
			}
			done = true
			g.Unlock(false)
		}()
		synctest.Wait()
		// Holding and releasing the gate without setting the condition must
		// not wake the waiter.
		g.Lock()
		g.Unlock(false)
		synctest.Wait()
		if done {
			t.Fatal("WaitAndLock returned while the condition was unset")
		}
		g.Lock()
		g.Unlock(true)
		synctest.Wait()
		if !done {
			t.Fatal("WaitAndLock did not return after the condition was set")
		}
	})
}

func TestWaitAndLockContext(t *testing.T) {
	cause := errors.New("test cause")
	tests := []struct {
		name    string
		set     bool
		ctx     func() (context.Context, func())
		wantSet bool
		wantErr error
	}{{
		name: "canceled while waiting returns context.Canceled",
		ctx: func() (context.Context, func()) {
			ctx, cancel := context.WithCancel(context.Background())
			return ctx, cancel
		},
		wantErr: context.Canceled,
	}, {
		name: "canceled with cause returns the cause",
		ctx: func() (context.Context, func()) {
			ctx, cancel := context.WithCancelCause(context.Background())
			return ctx, func() { cancel(cause) }
		},
		wantErr: cause,
	}, {
		name: "deadline returns context.DeadlineExceeded",
		ctx: func() (context.Context, func()) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			return ctx, func() { time.Sleep(2 * time.Second); cancel() } // fake time
		},
		wantErr: context.DeadlineExceeded,
	}, {
		name: "set gate is acquired even with an ended context",
		set:  true,
		ctx: func() (context.Context, func()) {
			ctx, cancel := context.WithCancel(context.Background())
			return ctx, cancel
		},
		wantSet: true,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				g := New(tt.set)
				ctx, end := tt.ctx()
				type result struct {
					set bool
					err error
				}
				resc := make(chan result, 1)
				if tt.set {
					end() // the context has ended before the call
				}
				go func() {
					set, err := g.WaitAndLock(ctx)
					resc <- result{set, err}
				}()
				synctest.Wait()
				if !tt.set {
					end()
				}
				r := <-resc
				if r.set != tt.wantSet || !errors.Is(r.err, tt.wantErr) || (tt.wantErr == nil) != (r.err == nil) {
					t.Fatalf("WaitAndLock = %v, %v; want %v, %v", r.set, r.err, tt.wantSet, tt.wantErr)
				}
				if r.set {
					g.Unlock(true)
				}
				// A waiter that gave up holds nothing: the gate is free and
				// keeps its condition. (Lock blocking would be a synctest
				// deadlock.)
				if got := g.Lock(); got != tt.set {
					t.Errorf("Lock after WaitAndLock = %v, want %v", got, tt.set)
				}
			})
		})
	}
}

func TestLockIfSet(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(g *Gate)
		want   bool
		unlock bool
	}{
		{"unset gate is not acquired", func(g *Gate) {}, false, false},
		{"set gate is acquired", func(g *Gate) { g.Lock(); g.Unlock(true) }, true, true},
		{"held gate is not acquired", func(g *Gate) { g.Lock() }, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := New(false)
			tt.setup(&g)
			if got := g.LockIfSet(); got != tt.want {
				t.Fatalf("LockIfSet() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestUnlockFunc(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := New(false)
		ready := false
		go func() {
			g.Lock()
			defer g.UnlockFunc(func() bool { return ready })
			ready = true
		}()
		if set, err := g.WaitAndLock(context.Background()); !set || err != nil {
			t.Fatalf("WaitAndLock = %v, %v; want true, nil", set, err)
		}
		if !ready {
			t.Fatal("UnlockFunc evaluated its condition before the deferring function returned")
		}
	})
}

func TestUnlockOfUnlockedPanics(t *testing.T) {
	for _, set := range []bool{false, true} {
		g := New(set)
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Unlock(%v) of unlocked gate did not panic", !set)
				}
			}()
			g.Unlock(!set)
		}()
	}
}

// TestStress runs every way of acquiring the gate at once. The race detector
// checks that the gate orders accesses to the counter it guards; the final
// count checks that no increment was lost, and the final condition that each
// holder saw the condition its predecessor recorded.
func TestStress(t *testing.T) {
	const (
		workers = 16
		rounds  = 2000
	)
	g := New(true)
	var (
		count int // guarded by g
		wg    sync.WaitGroup
	)
	acquired := make([]int, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				var set bool
				switch (w + i) % 3 {
				case 0:
					set = g.Lock()
				case 1:
					// A context that ends soon, so some waits give up.
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Microsecond)
					var err error
					set, err = g.WaitAndLock(ctx)
					cancel()
					if err != nil {
						continue
					}
				case 2:
					if set = g.LockIfSet(); !set {
						continue
					}
				}
				if want := count%2 == 0; set != want {
					t.Errorf("acquired with condition %v after count %d, want %v", set, count, want)
				}
				count++
				acquired[w]++
				g.UnlockFunc(func() bool { return count%2 == 0 })
			}
		}()
	}
	wg.Wait()
	total := 0
	for _, n := range acquired {
		total += n
	}
	if count != total {
		t.Errorf("count = %d, want %d acquisitions", count, total)
	}
	if count < workers*rounds/3 {
		t.Errorf("count = %d, want at least the %d unconditional Locks", count, workers*rounds/3)
	}
}
