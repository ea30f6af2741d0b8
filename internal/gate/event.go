package gate

import (
	"context"
	"sync"
)

// An Event is a one-time broadcast: it happens once, and every waiter, past
// or future, learns of it. A connection's lifetime is made of Events (ready,
// certificate known, shut down).
//
// Wait prefers an event that has happened over an ended context, as
// WaitAndLock prefers a set gate. The zero Event is ready to use and has
// not happened; it allocates its channel only once someone waits, so that
// the events of an idle connection that nobody waits for cost nothing. An
// Event must not be copied after first use.
type Event struct {
	mu  sync.Mutex
	c   chan struct{} // made by the first waiter, or closedChan
	set bool
}

// closedChan is the channel of every Event that happened before anyone
// waited.
var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// Set makes the event happen and wakes every waiter. Later calls do nothing.
func (e *Event) Set() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.set {
		return
	}
	e.set = true
	if e.c == nil {
		e.c = closedChan
	} else {
		close(e.c)
	}
}

// IsSet reports whether the event has happened.
func (e *Event) IsSet() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.set
}

// Done returns a channel that is closed when the event happens.
func (e *Event) Done() <-chan struct{} {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.c == nil {
		e.c = make(chan struct{})
	}
	return e.c
}

// Wait waits until the event happens or ctx ends, and then returns nil or
// context.Cause(ctx). An event that has happened wins over an ended context.
func (e *Event) Wait(ctx context.Context) error {
	if e.IsSet() {
		return nil
	}
	done := e.Done()
	select {
	case <-done:
		return nil
	default:
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
