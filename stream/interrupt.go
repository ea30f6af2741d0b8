package stream

import (
	"context"
	"sync"
	"time"
)

// aLongTimeAgo is a deadline that has always passed. Setting it makes a
// blocked quic-go Read or Write return at once with a deadline error.
var aLongTimeAgo = time.Unix(1, 0)

// deadliner applies a deadline to the quic-go side of one stream direction.
type deadliner interface {
	applyDeadline(t time.Time)
}

// interrupter lets a context end a blocking quic-go Read or Write, which only
// know deadlines: when the context ends, it moves the direction's deadline into
// the past, and when the call returns it puts back the deadline the user set.
//
// Invariant, under mu: while fired is false, the quic-go deadline equals
// user; while fired is true, it is aLongTimeAgo and user holds what to restore.
// A user deadline set while fired is only recorded, and applied by disarm.
// gen tells the callback of an earlier call, which may run late, from the
// current one, so a stale callback never interrupts a later call.
type interrupter struct {
	mu    sync.Mutex
	user  time.Time // the deadline set with SetReadDeadline or SetWriteDeadline
	gen   uint64    // incremented by each arm
	armed bool      // a call with a context is in progress
	fired bool      // that call's context ended: the quic-go deadline is in the past
}

// setDeadline records t as the user's deadline and applies it unless an
// interrupted call is still returning, in which case disarm applies it.
func (in *interrupter) setDeadline(t time.Time, d deadliner) {
	in.mu.Lock()
	in.user = t
	if !in.fired {
		d.applyDeadline(t)
	}
	in.mu.Unlock()
}

// arm watches ctx for one blocking call. The caller must call disarm with
// the result once the call returns. ctx must have a Done channel.
func (in *interrupter) arm(ctx context.Context, d deadliner) (stop func() bool) {
	in.mu.Lock()
	in.gen++
	gen := in.gen
	in.armed = true
	in.mu.Unlock()
	return context.AfterFunc(ctx, func() {
		in.mu.Lock()
		if in.armed && in.gen == gen {
			in.fired = true
			d.applyDeadline(aLongTimeAgo)
		}
		in.mu.Unlock()
	})
}

// disarm ends the watch started by arm, restores the user's deadline if the
// context fired, and reports whether it fired.
func (in *interrupter) disarm(stop func() bool, d deadliner) (fired bool) {
	// Whether or not the callback already started, the armed check below
	// makes a late run a no-op.
	stop()
	in.mu.Lock()
	in.armed = false
	fired = in.fired
	if fired {
		in.fired = false
		d.applyDeadline(in.user)
	}
	in.mu.Unlock()
	return fired
}
