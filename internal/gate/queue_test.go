package gate

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

func TestEvent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var e Event
		if e.IsSet() {
			t.Fatal("new Event is set")
		}
		var woke [3]bool
		for i := range woke {
			go func() {
				if err := e.Wait(context.Background()); err != nil {
					t.Errorf("Wait = %v", err)
				}
				woke[i] = true
			}()
		}
		synctest.Wait()
		for i, w := range woke {
			if w {
				t.Fatalf("waiter %d woke before Set", i)
			}
		}
		e.Set()
		e.Set() // a second Set is harmless
		synctest.Wait()
		for i, w := range woke {
			if !w {
				t.Errorf("waiter %d did not wake at Set", i)
			}
		}
		if !e.IsSet() {
			t.Error("IsSet = false after Set")
		}
		select {
		case <-e.Done():
		default:
			t.Error("Done not closed after Set")
		}
	})
}

func TestEventWaitContext(t *testing.T) {
	cause := errors.New("cause")
	ended, cancel := context.WithCancelCause(context.Background())
	cancel(cause)
	set := new(Event)
	set.Set()
	waitedThenSet := new(Event)
	waitedThenSet.Done()
	waitedThenSet.Set()
	tests := []struct {
		name string
		e    *Event
		want error
	}{
		{"unset, context ended", new(Event), cause},
		{"set wins over an ended context", set, nil},
		{"set after a Done, over an ended context", waitedThenSet, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.e.Wait(ended); err != tt.want {
				t.Errorf("Wait = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestQueueOrder(t *testing.T) {
	q := NewQueue[int](8)
	ctx := context.Background()
	for i := range 5 {
		if err := q.Put(ctx, i); err != nil {
			t.Fatal(err)
		}
	}
	if n := q.Len(); n != 5 {
		t.Fatalf("Len = %d, want 5", n)
	}
	for i := range 5 {
		if v, err := q.Get(ctx); v != i || err != nil {
			t.Fatalf("Get = %v, %v; want %d, nil", v, err, i)
		}
	}
}

func TestQueueGetWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := NewQueue[string](8)
		got := ""
		go func() {
			v, err := q.Get(context.Background())
			if err != nil {
				t.Errorf("Get = %v", err)
			}
			got = v
		}()
		synctest.Wait()
		if got != "" {
			t.Fatal("Get returned from an empty queue")
		}
		q.Put(context.Background(), "x")
		synctest.Wait()
		if got != "x" {
			t.Fatalf("Get = %q after Put, want x", got)
		}
	})
}

func TestQueueBoundedPutWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := NewQueue[int](2)
		ctx := context.Background()
		q.Put(ctx, 1)
		q.Put(ctx, 2)
		put := false
		go func() {
			if err := q.Put(ctx, 3); err != nil {
				t.Errorf("Put = %v", err)
			}
			put = true
		}()
		synctest.Wait()
		if put {
			t.Fatal("Put into a full queue did not wait")
		}
		if v, _ := q.Get(ctx); v != 1 {
			t.Fatalf("Get = %d, want 1", v)
		}
		synctest.Wait()
		if !put {
			t.Fatal("Put did not proceed once there was room")
		}
		if got := q.Drain(); len(got) != 2 || got[0] != 2 || got[1] != 3 {
			t.Fatalf("Drain = %v, want [2 3]", got)
		}

		// A Put waiting for room ends with its context.
		q.Put(ctx, 4)
		q.Put(ctx, 5)
		tctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		if err := q.Put(tctx, 6); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Put into a full queue with a deadline = %v", err)
		}
	})
}

func TestQueueClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		closed := errors.New("closed")
		q := NewQueue[int](1)
		ctx := context.Background()
		q.Put(ctx, 1)
		var getErr, putErr error
		go func() { putErr = q.Put(ctx, 2) }() // waits for room
		synctest.Wait()
		q.Close(closed)
		q.Close(errors.New("second")) // the first error stays
		synctest.Wait()
		if putErr != closed {
			t.Errorf("blocked Put after Close = %v, want %v", putErr, closed)
		}
		_, getErr = q.Get(ctx)
		if getErr != closed {
			t.Errorf("Get after Close = %v, want %v", getErr, closed)
		}
		if err := q.Put(ctx, 3); err != closed {
			t.Errorf("Put after Close = %v, want %v", err, closed)
		}
		if left := q.Drain(); len(left) != 1 || left[0] != 1 {
			t.Errorf("Drain after Close = %v, want [1]", left)
		}
	})
}

func TestQueueReadyWinsOverContext(t *testing.T) {
	q := NewQueue[int](8)
	q.Put(context.Background(), 7)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if v, err := q.Get(ctx); v != 7 || err != nil {
		t.Fatalf("Get with an ended context and an item = %v, %v; want 7, nil", v, err)
	}
}
