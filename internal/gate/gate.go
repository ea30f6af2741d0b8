// Copyright 2023 The Go Authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.
//
// Derived from golang.org/x/net/quic/gate.go (x/net v0.62.0); the LICENSE
// file beside this one is x/net's. Changes for quicconn: exported API, New
// takes the initial condition, WaitAndLock reports context.Cause, and Unlock
// panics when the gate is not locked.

// Package gate provides quicconn's waiters, the only ways its code waits for
// a condition with a context: Gate, a mutex with one bit of condition made of
// two 1-buffered channels, so that waiting for the condition can be
// abandoned when a context ends, which sync.Cond cannot do; Event, a
// one-time broadcast; and Queue, a bounded queue whose Get and Put wait.
// Each prefers a ready result over an ended context.
package gate

import "context"

// A Gate is a monitor (mutex plus condition variable) with one bit of state,
// the condition, which is either set or unset.
//
// Lock operations are unconditional (Lock) or wait for the condition to be
// set (WaitAndLock, LockIfSet). Unlock operations record the new state of the
// condition, so whoever holds the gate decides what the next waiter sees. A
// typical user holds the gate while it changes its own state and unlocks with
// the predicate waiters wait for, such as "the queue is non-empty or closed".
//
// The zero Gate is not usable: make one with New. Copies of a Gate are the
// same gate.
type Gate struct {
	// Invariant: when unlocked, exactly one of set or unset contains a
	// value; when locked, neither does. The holder of the lock is the only
	// one who may put a value back.
	set   chan struct{}
	unset chan struct{}
}

// New returns an unlocked Gate with the condition set to set.
func New(set bool) Gate {
	g := Gate{
		set:   make(chan struct{}, 1),
		unset: make(chan struct{}, 1),
	}
	g.Unlock(set)
	return g
}

// Lock acquires the gate unconditionally, waiting while another goroutine
// holds it. It reports whether the condition is set.
func (g *Gate) Lock() (set bool) {
	select {
	case <-g.set:
		return true
	case <-g.unset:
		return false
	}
}

// WaitAndLock waits until the condition is set, then acquires the gate; set
// is then always true. If ctx ends first, WaitAndLock returns
// context.Cause(ctx) without acquiring the gate, and leaves nothing behind.
// When the condition is already set WaitAndLock acquires the gate even if ctx
// has ended.
func (g *Gate) WaitAndLock(ctx context.Context) (set bool, err error) {
	// Try first, so a set gate wins over an ended context: select chooses
	// at random among ready cases.
	select {
	case <-g.set:
		return true, nil
	default:
	}
	select {
	case <-g.set:
		return true, nil
	case <-ctx.Done():
		return false, context.Cause(ctx)
	}
}

// LockIfSet acquires the gate if and only if it is unlocked and its
// condition is set. It never waits.
func (g *Gate) LockIfSet() (acquired bool) {
	select {
	case <-g.set:
		return true
	default:
		return false
	}
}

// Unlock records the state of the condition and releases the gate. The
// caller must hold the gate; Unlock of an unlocked Gate panics.
func (g *Gate) Unlock(set bool) {
	// Only the holder puts a value back, so while the caller holds the gate
	// both channels are empty and neither send below can block. A value in
	// either one means the gate is not locked.
	if len(g.set)+len(g.unset) != 0 {
		panic("gate: Unlock of unlocked Gate")
	}
	if set {
		g.set <- struct{}{}
	} else {
		g.unset <- struct{}{}
	}
}

// UnlockFunc sets the condition to the result of f and releases the gate.
// It is meant for defer, where the condition must be computed after the
// deferring function's last change of state.
func (g *Gate) UnlockFunc(f func() bool) {
	g.Unlock(f())
}
