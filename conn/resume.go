package conn

// Session resumption: the TLS session tickets a Registration's clients
// keep, and the cache through which a client's handshake finds them.

import (
	"container/list"
	"crypto/tls"
	"sync"

	"github.com/quicconn/quicconn/internal/gate"
)

// sessionCacheSize bounds the tickets a Registration keeps: one per server
// (and own identity), the most recently used kept first. A mesh node dials
// every other node, so a few hundred covers a validator set.
const sessionCacheSize = 1024

// sessionStore is a Registration's ticket cache, an LRU keyed by
// sessionKey. Each Registration has its own, so tests and components do not
// share tickets.
type sessionStore struct {
	mu    sync.Mutex
	ll    *list.List // of *sessionEntry, most recently used first
	byKey map[string]*list.Element
}

type sessionEntry struct {
	key string
	cs  *tls.ClientSessionState
}

func newSessionStore() *sessionStore {
	return &sessionStore{ll: list.New(), byKey: make(map[string]*list.Element)}
}

func (s *sessionStore) get(key string) (*tls.ClientSessionState, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.byKey[key]
	if !ok {
		return nil, false
	}
	s.ll.MoveToFront(e)
	return e.Value.(*sessionEntry).cs, true
}

// put stores cs under key; a nil cs removes the key's ticket, as
// tls.ClientSessionCache wants.
func (s *sessionStore) put(key string, cs *tls.ClientSessionState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.byKey[key]; ok {
		if cs == nil {
			s.ll.Remove(e)
			delete(s.byKey, key)
			return
		}
		e.Value.(*sessionEntry).cs = cs
		s.ll.MoveToFront(e)
		return
	}
	if cs == nil {
		return
	}
	s.byKey[key] = s.ll.PushFront(&sessionEntry{key, cs})
	if s.ll.Len() > sessionCacheSize {
		last := s.ll.Back()
		s.ll.Remove(last)
		delete(s.byKey, last.Value.(*sessionEntry).key)
	}
}

// sessionKey names the tickets that a client may offer: those it got from
// the same server address while presenting the same own identity. crypto/tls
// would key them by server name alone, so that two servers behind one name,
// or one name on two ports, would be offered each other's tickets. Whatever
// the key, a resumed handshake is still checked against the current trust
// on both sides (certverify runs on the session's certificates), so a peer
// revoked since its ticket was issued is refused.
func sessionKey(addr, ownIdentity string) string { return addr + " " + ownIdentity }

// sessionCache is one client handshake's tls.ClientSessionCache: it reads
// and writes the Registration's tickets under the connection's key (none
// with Settings.DisableResumption), and a ticket that arrives confirms the
// handshake (see awaitConfirmation).
type sessionCache struct {
	store     *sessionStore // nil: resumption disabled
	key       string
	confirmed *gate.Event
}

func (sc *sessionCache) Get(string) (*tls.ClientSessionState, bool) {
	if sc.store == nil {
		return nil, false
	}
	return sc.store.get(sc.key)
}

func (sc *sessionCache) Put(_ string, cs *tls.ClientSessionState) {
	if cs != nil {
		sc.confirmed.Set()
	}
	if sc.store != nil {
		sc.store.put(sc.key, cs)
	}
}

// Resumed reports whether the connection's TLS session was resumed from a
// ticket of an earlier connection (Settings.DisableResumption turns
// resumption off), which saves the certificate exchange. It is false until
// the connection is Connected. A resumed session keeps the peer identity of
// the handshake that issued its ticket: after the peer rotated its
// certificate (certverify.Credential.SetCertificate), RemoteIdentity
// reports the old one until a full handshake.
func (c *Connection) Resumed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.resumed
}
