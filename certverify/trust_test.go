package certverify

import (
	"bytes"
	"crypto/ed25519"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// trustView is a comparable, sorted view of a credential's current pins.
type trustView struct {
	Hashes []CertHash
	SPKIs  []SPKIHash
	Keys   [][32]byte
}

func viewOf(c *Credential) trustView {
	t := c.live.trust.Load()
	if t == nil {
		return trustView{}
	}
	var v trustView
	for h := range t.hashes {
		v.Hashes = append(v.Hashes, h)
	}
	for h := range t.spkis {
		v.SPKIs = append(v.SPKIs, h)
	}
	for k := range t.keys {
		v.Keys = append(v.Keys, k)
	}
	cmp32 := func(a, b [32]byte) int { return bytes.Compare(a[:], b[:]) }
	slices.SortFunc(v.Hashes, func(a, b CertHash) int { return cmp32(a, b) })
	slices.SortFunc(v.SPKIs, func(a, b SPKIHash) int { return cmp32(a, b) })
	slices.SortFunc(v.Keys, cmp32)
	return v
}

func sortedHashes(hs ...CertHash) []CertHash {
	return slices.SortedFunc(slices.Values(hs), func(a, b CertHash) int { return bytes.Compare(a[:], b[:]) })
}

// TestTrustChanges applies a sequence of changes to one credential and
// checks, after each, the pins in force and whether the OnTrustRemoved
// callbacks ran: only a change that removed something runs them.
func TestTrustChanges(t *testing.T) {
	t.Parallel()
	h1, h2 := HashOf([]byte("1")), HashOf([]byte("2"))
	s1, s2 := SPKIHash(HashOf([]byte("s1"))), SPKIHash(HashOf([]byte("s2")))
	k1, k2 := pub(endorser(1)), pub(endorser(2))
	sorted := sortedHashes

	steps := []struct {
		name    string
		change  func(*Credential)
		want    trustView
		removed bool
	}{
		{"nothing is pinned at first", func(*Credential) {}, trustView{}, false},
		{"trust a hash", func(c *Credential) { c.TrustHashes(h1) }, trustView{Hashes: []CertHash{h1}}, false},
		{"trust it again and another", func(c *Credential) { c.TrustHashes(h2, h1) }, trustView{Hashes: sorted(h1, h2)}, false},
		{"trust no hash", func(c *Credential) { c.TrustHashes() }, trustView{Hashes: sorted(h1, h2)}, false},
		{"trust an SPKI hash", func(c *Credential) { c.TrustSPKIs(s1) }, trustView{Hashes: sorted(h1, h2), SPKIs: []SPKIHash{s1}}, false},
		{"trust a key", func(c *Credential) { c.TrustPubKeys(k1) }, trustView{Hashes: sorted(h1, h2), SPKIs: []SPKIHash{s1}, Keys: [][32]byte{[32]byte(k1)}}, false},
		{"untrust an absent hash", func(c *Credential) { c.UntrustHashes(HashOf([]byte("x"))) }, trustView{Hashes: sorted(h1, h2), SPKIs: []SPKIHash{s1}, Keys: [][32]byte{[32]byte(k1)}}, false},
		{"untrust an absent SPKI hash", func(c *Credential) { c.UntrustSPKIs(s2) }, trustView{Hashes: sorted(h1, h2), SPKIs: []SPKIHash{s1}, Keys: [][32]byte{[32]byte(k1)}}, false},
		{"untrust an absent key", func(c *Credential) { c.UntrustPubKeys(k2) }, trustView{Hashes: sorted(h1, h2), SPKIs: []SPKIHash{s1}, Keys: [][32]byte{[32]byte(k1)}}, false},
		{"untrust a hash", func(c *Credential) { c.UntrustHashes(h1, HashOf([]byte("x"))) }, trustView{Hashes: []CertHash{h2}, SPKIs: []SPKIHash{s1}, Keys: [][32]byte{[32]byte(k1)}}, true},
		{"untrust an SPKI hash", func(c *Credential) { c.UntrustSPKIs(s1) }, trustView{Hashes: []CertHash{h2}, Keys: [][32]byte{[32]byte(k1)}}, true},
		{"untrust a key", func(c *Credential) { c.UntrustPubKeys(k1) }, trustView{Hashes: []CertHash{h2}}, true},
		{"untrust the last pin", func(c *Credential) { c.UntrustHashes(h2) }, trustView{}, true},
	}
	var c Credential
	var removals atomic.Int32
	stop := c.OnTrustRemoved(func() { removals.Add(1) })
	defer stop()
	for _, st := range steps {
		before := removals.Load()
		st.change(&c)
		if diff := cmp.Diff(st.want, viewOf(&c)); diff != "" {
			t.Errorf("%s: pins (-want +got):\n%s", st.name, diff)
		}
		if got := removals.Load() - before; got != map[bool]int32{false: 0, true: 1}[st.removed] {
			t.Errorf("%s: OnTrustRemoved ran %d times", st.name, got)
		}
	}
}

// TestTrustChangesKeepSnapshots shows that a change never alters a
// snapshot a verification may hold: it builds a new one.
func TestTrustChangesKeepSnapshots(t *testing.T) {
	t.Parallel()
	var c Credential
	h1, h2 := HashOf([]byte("1")), HashOf([]byte("2"))
	c.TrustHashes(h1)
	held := c.live.trust.Load()
	c.TrustHashes(h2)
	c.UntrustHashes(h1)
	if _, ok := held.hashes[h1]; !ok || len(held.hashes) != 1 {
		t.Errorf("the held snapshot changed: %v", held.hashes)
	}
	if diff := cmp.Diff(trustView{Hashes: []CertHash{h2}}, viewOf(&c)); diff != "" {
		t.Errorf("pins (-want +got):\n%s", diff)
	}
}

// TestPubKeysPanicOnBadKey: dropping a wrong-sized key silently could leave
// the credential without the pin its caller meant, so both directions panic
// and change nothing.
func TestPubKeysPanicOnBadKey(t *testing.T) {
	t.Parallel()
	for name, f := range map[string]func(*Credential, ...ed25519.PublicKey){
		"TrustPubKeys":   (*Credential).TrustPubKeys,
		"UntrustPubKeys": (*Credential).UntrustPubKeys,
	} {
		t.Run(name, func(t *testing.T) {
			var c Credential
			c.TrustPubKeys(pub(endorser(1)))
			want := viewOf(&c)
			func() {
				defer func() {
					if recover() == nil {
						t.Errorf("%s accepted a 31-byte key", name)
					}
				}()
				f(&c, pub(endorser(2)), make(ed25519.PublicKey, 31))
			}()
			if diff := cmp.Diff(want, viewOf(&c)); diff != "" {
				t.Errorf("%s changed the pins before panicking (-want +got):\n%s", name, diff)
			}
		})
	}
}

// TestOnTrustRemoved pins down the callback contract: every registered
// callback runs once per removing change, after the change is in force;
// stop reports whether it unregistered; callbacks may call back into the
// credential, stop included, without deadlock.
func TestOnTrustRemoved(t *testing.T) {
	t.Parallel()
	peerA, peerB := mint(t, certSpec{}), mint(t, certSpec{})
	var c Credential
	c.TrustHashes(HashOf(peerA.der), HashOf(peerB.der))

	// The callback re-checks peer A, as conn re-checks a live connection.
	var seen []error
	stopA := c.OnTrustRemoved(func() { seen = append(seen, c.VerifyTrust(peerA.cert)) })
	var bRuns int
	stopB := c.OnTrustRemoved(func() { bRuns++ })

	c.UntrustHashes(HashOf(peerB.der))
	c.UntrustHashes(HashOf(peerA.der))
	want := []certErr{{}, {Reason: reasonNoTrust, Hash: HashOf(peerA.der)}}
	got := make([]certErr, len(seen))
	for i, err := range seen {
		got[i] = asCertErr(t, err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("what the callback saw (-want +got):\n%s", diff)
	}
	if bRuns != 2 {
		t.Errorf("second callback ran %d times, want 2", bRuns)
	}

	if !stopA() {
		t.Error("first stop returned false")
	}
	if stopA() {
		t.Error("second stop returned true")
	}
	c.TrustHashes(HashOf(peerA.der))
	c.UntrustHashes(HashOf(peerA.der))
	if len(seen) != 2 || bRuns != 3 {
		t.Errorf("after stop: first callback ran %d times (want 2), second %d (want 3)", len(seen), bRuns)
	}
	stopB()

	// A callback that stops itself, registers another and changes trust.
	var self func() bool
	var inner, outer int
	self = c.OnTrustRemoved(func() {
		outer++
		if !self() {
			t.Error("stop from inside the callback returned false")
		}
		c.OnTrustRemoved(func() { inner++ })
		c.TrustHashes(HashOf([]byte("added from a callback")))
	})
	c.TrustHashes(HashOf(peerB.der))
	c.UntrustHashes(HashOf(peerB.der))
	c.UntrustHashes(HashOf([]byte("added from a callback")))
	if outer != 1 || inner != 1 {
		t.Errorf("self-stopping callback ran %d times (want 1), the one it registered %d (want 1)", outer, inner)
	}
}

// TestOnTrustRemovedManyCallbacks registers and stops callbacks as a
// server with many connections does, from many goroutines at once, while
// trust is removed: each registered callback runs, none runs after its stop
// returned and the process finished.
func TestOnTrustRemovedManyCallbacks(t *testing.T) {
	t.Parallel()
	const n = 10000
	var c Credential
	h := HashOf([]byte("peer"))
	var runs atomic.Int64
	stops := make([]func() bool, n)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := g; i < n; i += 4 {
				stops[i] = c.OnTrustRemoved(func() { runs.Add(1) })
			}
		})
	}
	wg.Wait()
	c.TrustHashes(h)
	c.UntrustHashes(h)
	if got := runs.Load(); got != n {
		t.Fatalf("%d callbacks ran, want %d", got, n)
	}
	for g := range 4 {
		wg.Go(func() {
			for i := g; i < n; i += 4 {
				if !stops[i]() {
					t.Errorf("stop %d returned false", i)
				}
			}
		})
	}
	c.TrustHashes(h)
	c.UntrustHashes(h) // concurrently with the stops: each runs at most once more
	wg.Wait()
	if got := runs.Load(); got < n || got > 2*n {
		t.Fatalf("%d runs, want between %d and %d", got, n, 2*n)
	}
	after := runs.Load()
	c.TrustHashes(h)
	c.UntrustHashes(h)
	if got := runs.Load(); got != after {
		t.Errorf("%d callbacks ran after every stop returned", got-after)
	}
	c.live.watchMu.Lock()
	left := len(c.live.watchers)
	c.live.watchMu.Unlock()
	if left != 0 {
		t.Errorf("%d callbacks still registered", left)
	}
}
