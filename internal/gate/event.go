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
// WaitAndLock prefers a set gate. The zero Event is not usable: make one
// with NewEvent.
type Event struct {
	// c is closed when the event happens; once guards the close, so that
	// Set may be called any number of times from any goroutine.
	c    chan struct{}
	once *sync.Once
}

// NewEvent returns an Event that has not happened.
func NewEvent() Event {
	return Event{c: make(chan struct{}), once: new(sync.Once)}
}

// Set makes the event happen and wakes every waiter. Later calls do nothing.
func (e Event) Set() { e.once.Do(func() { close(e.c) }) }

// IsSet reports whether the event has happened.
func (e Event) IsSet() bool {
	select {
	case <-e.c:
		return true
	default:
		return false
	}
}

// Done returns a channel that is closed when the event happens.
func (e Event) Done() <-chan struct{} { return e.c }

// Wait waits until the event happens or ctx ends, and then returns nil or
// context.Cause(ctx). An event that has happened wins over an ended context.
func (e Event) Wait(ctx context.Context) error {
	select {
	case <-e.c:
		return nil
	default:
	}
	select {
	case <-e.c:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
