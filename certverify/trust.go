package certverify

import (
	"crypto/ed25519"
	"crypto/tls"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
)

// trustSet is one immutable snapshot of a credential's pins. Verification
// loads the current snapshot once and reads it without a lock; a change
// builds a new snapshot and swaps it in, so no verification ever sees a
// change half-applied. A nil *trustSet pins nothing.
type trustSet struct {
	hashes map[CertHash]struct{}
	spkis  map[SPKIHash]struct{}
	keys   map[[32]byte]struct{} // ed25519 endorser keys
}

// pinned reports whether the snapshot pins anything.
func (t *trustSet) pinned() bool {
	return t != nil && len(t.hashes)+len(t.spkis)+len(t.keys) > 0
}

// live is the part of a Credential that changes while connections use it.
// Its zero value is a credential that pins nothing, presents its
// Certificate field and has no OnTrustRemoved callbacks.
type live struct {
	mu    sync.Mutex // serializes writers of trust and cert
	trust atomic.Pointer[trustSet]
	cert  atomic.Pointer[tls.Certificate] // nil: the Certificate field

	watchMu  sync.Mutex
	watchers map[*watcher]struct{}
}

// watcher is one OnTrustRemoved registration.
type watcher struct {
	f       func()
	stopped atomic.Bool
}

// change applies edit to a copy of the current snapshot and swaps the copy
// in. edit returns whether it changed anything and whether it removed
// anything; a change that removed trust runs the OnTrustRemoved callbacks
// once the new snapshot is in force.
func (c *Credential) change(edit func(next *trustSet) (changed, removed bool)) {
	c.live.mu.Lock()
	var next trustSet
	if cur := c.live.trust.Load(); cur != nil {
		next = *cur // the maps are shared until edit copies the one it changes
	}
	changed, removed := edit(&next)
	if changed {
		c.live.trust.Store(&next)
	}
	c.live.mu.Unlock()
	if removed {
		c.trustRemoved()
	}
}

// addAll returns a copy of m holding xs too, and whether any was new; it
// returns m itself when nothing was.
func addAll[K comparable](m map[K]struct{}, xs []K) (map[K]struct{}, bool) {
	var out map[K]struct{}
	for _, x := range xs {
		if _, ok := m[x]; ok {
			continue
		}
		if _, ok := out[x]; ok {
			continue
		}
		if out == nil {
			out = make(map[K]struct{}, len(m)+len(xs))
			maps.Copy(out, m)
		}
		out[x] = struct{}{}
	}
	if out == nil {
		return m, false
	}
	return out, true
}

// removeAll returns a copy of m without xs, and whether any was there; it
// returns m itself when none was.
func removeAll[K comparable](m map[K]struct{}, xs []K) (map[K]struct{}, bool) {
	var out map[K]struct{}
	for _, x := range xs {
		if _, ok := m[x]; !ok {
			continue
		}
		if out == nil {
			out = maps.Clone(m)
		}
		delete(out, x)
	}
	if out == nil {
		return m, false
	}
	return out, true
}

// TrustHashes pins peers by certificate hash: a peer whose leaf has one of
// these hashes is trusted from the next handshake on. It is safe at any
// time, from any goroutine, while connections run.
func (c *Credential) TrustHashes(h ...CertHash) {
	c.change(func(t *trustSet) (bool, bool) {
		var changed bool
		t.hashes, changed = addAll(t.hashes, h)
		return changed, false
	})
}

// UntrustHashes removes certificate hash pins. Handshakes that start after
// it returns no longer trust those hashes, and the OnTrustRemoved
// callbacks run (when a pin was removed) so that live connections are
// re-checked. Removing a hash that is not pinned does nothing. It is safe
// at any time, from any goroutine, while connections run.
//
// Mind that removing the last pin leaves a credential that pins nothing,
// which rejects every peer unless Roots or AcceptUnpinned is set.
func (c *Credential) UntrustHashes(h ...CertHash) {
	c.change(func(t *trustSet) (bool, bool) {
		var removed bool
		t.hashes, removed = removeAll(t.hashes, h)
		return removed, removed
	})
}

// TrustSPKIs pins peers by public key: a peer whose leaf's
// SubjectPublicKeyInfo has one of these hashes is trusted from the next
// handshake on, whatever certificate carries the key, so the pin survives
// the peer's re-issuing its certificate with the same key. It is safe at
// any time, from any goroutine, while connections run.
func (c *Credential) TrustSPKIs(h ...SPKIHash) {
	c.change(func(t *trustSet) (bool, bool) {
		var changed bool
		t.spkis, changed = addAll(t.spkis, h)
		return changed, false
	})
}

// UntrustSPKIs removes public key pins, as UntrustHashes removes hash pins,
// with the same effect on handshakes and live connections.
func (c *Credential) UntrustSPKIs(h ...SPKIHash) {
	c.change(func(t *trustSet) (bool, bool) {
		var removed bool
		t.spkis, removed = removeAll(t.spkis, h)
		return removed, removed
	})
}

// TrustPubKeys trusts ed25519 endorser keys: a peer whose certificate
// carries a valid endorsement by one of them is trusted from the next
// handshake on. It is safe at any time, from any goroutine, while
// connections run.
//
// It panics on a key that is not ed25519.PublicKeySize bytes long, as the
// ed25519 package does, and then adds none of k: dropping the bad key
// instead could leave the credential without the pin its caller meant to
// add.
func (c *Credential) TrustPubKeys(k ...ed25519.PublicKey) {
	keys := endorserKeys("TrustPubKeys", k)
	c.change(func(t *trustSet) (bool, bool) {
		var changed bool
		t.keys, changed = addAll(t.keys, keys)
		return changed, false
	})
}

// UntrustPubKeys stops trusting endorser keys, as UntrustHashes removes
// hash pins, with the same effect on handshakes and live connections:
// every peer trusted only through those endorsers loses trust. It panics
// on a key of the wrong size, as TrustPubKeys does.
func (c *Credential) UntrustPubKeys(k ...ed25519.PublicKey) {
	keys := endorserKeys("UntrustPubKeys", k)
	c.change(func(t *trustSet) (bool, bool) {
		var removed bool
		t.keys, removed = removeAll(t.keys, keys)
		return removed, removed
	})
}

// endorserKeys converts keys to map keys, panicking on a wrong size before
// anything changes.
func endorserKeys(op string, k []ed25519.PublicKey) [][32]byte {
	out := make([][32]byte, len(k))
	for i, x := range k {
		if len(x) != ed25519.PublicKeySize {
			panic(fmt.Sprintf("certverify: %s: ed25519 public key is %d bytes, want %d",
				op, len(x), ed25519.PublicKeySize))
		}
		out[i] = [32]byte(x)
	}
	return out
}

// OnTrustRemoved registers f to run after every change that removes trust
// (any Untrust* call that removed something). f runs synchronously on the
// goroutine that made the change, after the new snapshot is in force, so a
// VerifyTrust call made by f sees the change; it must not block, and since
// several goroutines may remove trust at once, it may run concurrently with
// itself. f may call any method of the Credential, stop included.
//
// stop unregisters f and returns whether f was still registered. Once stop
// has returned no new run of f starts, but a run that a concurrent change
// had already begun may still be under way. Registering and unregistering
// take constant time, so a server may register one callback per live
// connection.
//
// This is how package conn closes the connections whose peer a change
// untrusts; programs that verify peers themselves can do the same.
func (c *Credential) OnTrustRemoved(f func()) (stop func() bool) {
	w := &watcher{f: f}
	c.live.watchMu.Lock()
	if c.live.watchers == nil {
		c.live.watchers = make(map[*watcher]struct{})
	}
	c.live.watchers[w] = struct{}{}
	c.live.watchMu.Unlock()
	return func() bool {
		c.live.watchMu.Lock()
		defer c.live.watchMu.Unlock()
		w.stopped.Store(true)
		if _, ok := c.live.watchers[w]; !ok {
			return false
		}
		delete(c.live.watchers, w)
		return true
	}
}

// trustRemoved runs the OnTrustRemoved callbacks. They run outside the
// registry's lock, so that one may register or stop callbacks.
func (c *Credential) trustRemoved() {
	c.live.watchMu.Lock()
	ws := make([]*watcher, 0, len(c.live.watchers))
	for w := range c.live.watchers {
		ws = append(ws, w)
	}
	c.live.watchMu.Unlock()
	for _, w := range ws {
		if !w.stopped.Load() {
			w.f()
		}
	}
}
