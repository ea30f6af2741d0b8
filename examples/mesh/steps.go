package main

// The run: one function per step, each printing what the nodes saw.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/quicconn/quicconn/conn"
	qerr "github.com/quicconn/quicconn/errors"
)

// alpn is the application protocol every node offers.
const alpn = "quicconn-mesh/1"

// revokeTimeout is how long a revoked node's connections may outlive the
// Untrust calls before the run fails. quicconn closes them within 100 ms.
const revokeTimeout = time.Second

// connectTimeout bounds the connect step of n nodes: a full mesh's
// handshakes grow as the square of its size, and share the machine.
func connectTimeout(n int) time.Duration {
	return max(stepTimeout, time.Duration(n*(n-1)/2)*20*time.Millisecond)
}

// heartbeats is the number of datagrams each node sends each peer.
const heartbeats = 3

// runner holds a run's nodes as its steps change the membership.
type runner struct {
	m      *mesh
	p      *printer
	first  []*node  // the nodes started first, in order
	alive  []*node  // the nodes trusted by the others
	victim *node    // the node revoked
	rumors []string // every rumor the alive nodes must know
}

// runMesh runs every step in turn and stops at the first that fails.
func runMesh(ctx context.Context, out io.Writer, cfg *config) error {
	m := newMesh(ctx, cfg.log)
	defer m.close()
	r := &runner{m: m, p: &printer{out: out, verbose: cfg.verbose}}
	if err := r.start(cfg.nodes); err != nil {
		return err
	}
	for _, step := range []struct {
		name string
		run  func() error
	}{
		{"connect", r.connect},
		{"gossip", r.gossip},
		{"request", r.request},
		{"datagrams", r.datagrams},
		{"admit", r.admit},
		{"revoke", r.revoke},
		{"refused", r.refuse},
		{"after", r.after},
		{"shutdown", r.shutdown},
	} {
		if err := step.run(); err != nil {
			return fmt.Errorf("%s: %w", step.name, err)
		}
	}
	return nil
}

// start makes the first nodes, each trusting all the others, and starts
// their listeners.
func (r *runner) start(count int) error {
	for range count {
		if _, err := r.m.newNode(); err != nil {
			return err
		}
	}
	r.first = slices.Clone(r.m.nodes)
	r.alive = slices.Clone(r.first)
	for _, n := range r.first {
		for _, o := range r.first {
			if o != n {
				n.cred.TrustHashes(o.id)
			}
		}
	}
	for _, n := range r.first {
		if err := n.listen(); err != nil {
			return err
		}
	}
	fmt.Fprintf(r.p.out, "quicconn mesh: %d nodes in one process, each with its own Registration, identity and listener, pinning the others' certificate hashes\n", count)
	for _, n := range r.first {
		fmt.Fprintf(r.p.out, "node %s  listening on %s, identity %s\n", n.name, n.ln.Addr(), n.id)
	}
	return nil
}

// connect makes the full mesh: each node dials the nodes started before
// it, so that every pair has one connection.
func (r *runner) connect() error {
	t := time.Now()
	for i, n := range r.first {
		for _, o := range r.first[:i] {
			n.dial(o)
		}
	}
	err := r.m.await(connectTimeout(len(r.first)), func() (string, error) {
		if err := r.m.dialErr(r.first); err != nil {
			return "", err
		}
		return r.m.connected(r.first), nil
	})
	if err != nil {
		return err
	}
	took := time.Since(t)
	for _, n := range r.first {
		var dialed, accepted []string
		var last time.Time
		for _, o := range r.first {
			if l := r.m.rec[n].links[o.id]; l != nil {
				if l.dialed {
					dialed = append(dialed, o.name)
				} else {
					accepted = append(accepted, o.name)
				}
				last = later(last, l.up)
			}
		}
		r.p.detail(n, "dialled %v, accepted %v, all up +%v", dialed, accepted, round(last.Sub(t)))
	}
	count := len(r.first)
	r.p.step("connect", took, "%s: every node connected to its %s, each peer named by its RemoteIdentity", plural(count*(count-1)/2, "connection"), plural(count-1, "peer"))
	return nil
}

// gossip has every node start a rumor and waits until every node knows
// all of them.
func (r *runner) gossip() error {
	t := time.Now()
	var fresh []string
	for _, n := range r.first {
		rumor := n.name + "/1"
		fresh = append(fresh, rumor)
		n.originate(rumor)
	}
	r.rumors = append(r.rumors, fresh...)
	err := r.m.await(stepTimeout, func() (string, error) {
		return r.m.everyoneKnows(r.first, fresh), nil
	})
	if err != nil {
		return err
	}
	took := time.Since(t)
	for _, n := range r.first {
		var last time.Time
		for _, rumor := range fresh {
			last = later(last, r.m.rec[n].learnt[rumor])
		}
		r.p.detail(n, "knows %d rumors, the last +%v", len(fresh), round(last.Sub(t)))
	}
	r.p.step("gossip", took, "%d rumors, one from each node, reached all %d nodes over message streams (each node forwards what is new to it)", len(fresh), len(r.first))
	return nil
}

// request has every node ask every peer, on a bidirectional stream, how
// many rumors it knows.
func (r *runner) request() error {
	t := time.Now()
	want := fmt.Sprintf(replyFormat, len(r.rumors))
	asked := 0
	for _, n := range r.first {
		for _, o := range r.first {
			p := n.peer(o.id)
			if p == nil {
				continue
			}
			asked++
			r.m.wg.Go(func() {
				ctx, cancel := context.WithTimeout(r.m.ctx, stepTimeout)
				defer cancel()
				text, rtt, err := n.ask(ctx, p)
				r.m.emit(event{kind: replied, node: n, peer: p.id, at: time.Now(), rumor: text, took: rtt, err: err})
			})
		}
	}
	var rtts []time.Duration
	err := r.m.await(stepTimeout, func() (string, error) {
		got := 0
		for _, n := range r.first {
			for _, rp := range r.m.rec[n].replies {
				switch {
				case rp.err != nil:
					return "", fmt.Errorf("node %s asking %s: %w", n.name, shortName(rp.peer), rp.err)
				case rp.text != want:
					return "", fmt.Errorf("node %s asked %s: reply %q, want %q", n.name, shortName(rp.peer), rp.text, want)
				}
				got++
			}
		}
		if got < asked {
			return fmt.Sprintf("%d of %d requests unanswered", asked-got, asked), nil
		}
		return "", nil
	})
	if err != nil {
		return err
	}
	for _, n := range r.first {
		var own []time.Duration
		for _, rp := range r.m.rec[n].replies {
			own = append(own, rp.rtt)
		}
		rtts = append(rtts, own...)
		r.p.detail(n, "asked %d peers: %q from each, round trip %s", len(own), want, spread(own))
	}
	r.p.step("request", time.Since(t), "%d requests on bidirectional streams (MessageWriter, MessageReader): every peer replied %q, round trip %s", asked, want, spread(rtts))
	return nil
}

// datagrams has every node send heartbeats to every peer. Datagrams are
// not resent, so a lost one is counted, not a failure.
func (r *runner) datagrams() error {
	t := time.Now()
	sent := 0
	for _, n := range r.first {
		for _, o := range r.first {
			p := n.peer(o.id)
			if p == nil {
				continue
			}
			if p.c.MaxDatagramSize() == 0 {
				return fmt.Errorf("node %s: datagrams to %s not enabled", n.name, o.name)
			}
			for range heartbeats {
				if err := heartbeat(p); err != nil {
					return fmt.Errorf("node %s: sending a datagram to %s: %w", n.name, o.name, err)
				}
				sent++
			}
		}
	}
	var all []time.Duration
	received := func() int {
		all = all[:0]
		for _, n := range r.first {
			all = append(all, r.m.rec[n].latencies...)
		}
		return len(all)
	}
	err := r.m.await(stepTimeout/5, func() (string, error) {
		if received() < sent {
			return "datagrams missing", nil
		}
		return "", nil
	})
	if _, lost := errors.AsType[*timeoutError](err); err != nil && !lost {
		return err
	}
	took := time.Since(t)
	received()
	for _, n := range r.first {
		r.p.detail(n, "received %d heartbeats, one-way %s", len(r.m.rec[n].latencies), spread(r.m.rec[n].latencies))
	}
	r.p.step("datagrams", took, "%d sent, %d received, one-way %s (unreliable: a lost datagram is not resent)", sent, len(all), spread(all))
	return nil
}

// admit starts a node, has every running node trust it on its running
// listener and has it connect to all of them, and reports, per node, how
// long after trusting it the node heard from it.
func (r *runner) admit() error {
	nw, err := r.m.newNode()
	if err != nil {
		return err
	}
	for _, o := range r.alive {
		nw.cred.TrustHashes(o.id)
	}
	if err := nw.listen(); err != nil {
		return err
	}
	// The new node's rumor goes out as the first message on each of its
	// connections.
	rumor := nw.name + "/1"
	nw.originate(rumor)

	t := time.Now()
	trusted := make(map[*node]time.Time)
	for _, n := range r.alive {
		trusted[n] = time.Now()
		n.cred.TrustHashes(nw.id)
	}
	for _, n := range r.alive {
		nw.dial(n)
	}
	running := r.alive
	r.alive = append(slices.Clone(r.alive), nw)
	r.rumors = append(r.rumors, rumor)
	err = r.m.await(stepTimeout, func() (string, error) {
		if err := r.m.dialErr([]*node{nw}); err != nil {
			return "", err
		}
		if missing := r.m.connected(r.alive); missing != "" {
			return missing, nil
		}
		return r.m.everyoneKnows(r.alive, r.rumors), nil
	})
	if err != nil {
		return err
	}

	var slowest time.Duration
	for _, n := range running {
		rec := r.m.rec[n]
		first := rec.learnt[rumor].Sub(trusted[n])
		slowest = max(slowest, first)
		via := "direct"
		if from := rec.from[rumor]; from != nw.id {
			via = "forwarded by " + shortName(from)
		}
		r.p.node(n, "trusted %s live: connected +%v, first message from it +%v (%s)", nw.name, round(rec.links[nw.id].up.Sub(trusted[n])), round(first), via)
	}
	rec := r.m.rec[nw]
	var connected, firstMsg, synced time.Time
	for _, n := range running {
		connected = later(connected, rec.links[n.id].up)
	}
	for _, rm := range r.rumors {
		if rm != rumor {
			firstMsg = earlier(firstMsg, rec.learnt[rm])
			synced = later(synced, rec.learnt[rm])
		}
	}
	r.p.node(nw, "new: connected to all %d +%v, first message +%v, knew all %d rumors +%v", len(running), round(connected.Sub(t)), round(firstMsg.Sub(t)), len(r.rumors), round(synced.Sub(t)))
	r.p.step("admit", time.Since(t), "node %s joined: the %d running nodes trusted its hash (TrustHashes, no re-Listen), it connected to all; admission to first message at most %v", nw.name, len(running), round(slowest))
	return nil
}

// revoke has every other node stop trusting one of the first nodes, and
// checks that quicconn closes all its connections, on both sides, by
// itself.
func (r *runner) revoke() error {
	v := r.first[1]
	r.victim = v
	r.alive = slices.DeleteFunc(slices.Clone(r.alive), func(n *node) bool { return n == v })
	r.m.mayEnd = func(a, b *node) bool { return a == v || b == v }

	t := time.Now()
	untrusted := make(map[*node]time.Time)
	for _, n := range r.alive {
		untrusted[n] = time.Now()
		n.cred.UntrustHashes(v.id)
	}
	err := r.m.await(revokeTimeout, func() (string, error) {
		for _, n := range r.alive {
			if r.m.rec[n].links[v.id].down.IsZero() {
				return fmt.Sprintf("node %s still connected to the revoked node %s", n.name, v.name), nil
			}
			if r.m.rec[v].links[n.id].down.IsZero() {
				return fmt.Sprintf("the revoked node %s still connected to %s", v.name, n.name), nil
			}
		}
		return "", nil
	})
	if err != nil {
		return err
	}

	var slowest time.Duration
	for _, n := range r.alive {
		l := r.m.rec[n].links[v.id]
		ce, ok := errors.AsType[*qerr.ConnectionError](l.err)
		if !ok || ce.Reason != qerr.TrustRevoked || !errors.Is(l.err, qerr.ErrBadCertificate) {
			return fmt.Errorf("node %s: the connection to the revoked node %s ended with %v, want Reason TrustRevoked", n.name, v.name, l.err)
		}
		took := l.down.Sub(untrusted[n])
		slowest = max(slowest, took)
		r.p.node(n, "untrusted %s: connection closed +%v, Err: %s", v.name, round(took), describe(l.err))
	}
	for _, n := range r.alive {
		l := r.m.rec[v].links[n.id]
		ce, ok := errors.AsType[*qerr.ConnectionError](l.err)
		if !ok || ce.Reason != qerr.ShutdownByPeer || ce.Code != conn.CodeTrustRevoked {
			return fmt.Errorf("the revoked node %s: its connection to %s ended with %v, want ShutdownByPeer with code 0x%x", v.name, n.name, l.err, conn.CodeTrustRevoked)
		}
		took := l.down.Sub(untrusted[n])
		slowest = max(slowest, took)
		r.p.node(v, "revoked by %s: connection closed +%v, Err: %s", n.name, round(took), describe(l.err))
	}
	r.p.step("revoke", time.Since(t), "node %s untrusted by the other %d nodes (UntrustHashes): quicconn closed its %d connections by itself, revocation to disconnect at most %v", v.name, len(r.alive), len(r.alive), round(slowest))
	return nil
}

// refuse has the revoked node connect again, and checks that its Start
// fails because the peer refused its certificate. The revoked node holds a
// session ticket from its earlier connection, so it tries to resume: the
// target refuses the resumed session as soon as the ticket is presented,
// before its listener hands the connection out, and so its Accept may
// never see it (the listener skips handshakes that failed that early); a
// refusal it did see must name the revoked node.
func (r *runner) refuse() error {
	v, target := r.victim, r.first[0]
	t := time.Now()
	v.dial(target)
	err := r.m.await(stepTimeout, func() (string, error) {
		if r.m.rec[v].dialErrs[target.id] == nil {
			return fmt.Sprintf("the revoked node %s is still connecting to %s", v.name, target.name), nil
		}
		return "", nil
	})
	if err != nil {
		return err
	}
	dialErr := r.m.rec[v].dialErrs[target.id]
	if ce, ok := errors.AsType[*qerr.CertificateError](dialErr); !ok || !ce.Remote {
		return fmt.Errorf("the revoked node %s connecting to %s: %v, want the peer to reject our certificate", v.name, target.name, dialErr)
	}
	for _, refusal := range r.m.rec[target].refusals {
		if ce, ok := errors.AsType[*qerr.CertificateError](refusal); !ok || ce.Remote || ce.Hash != v.id {
			return fmt.Errorf("node %s accepting the revoked node %s: %v, want its certificate rejected", target.name, v.name, refusal)
		}
	}
	r.p.step("refused", time.Since(t), "node %s connected to %s again: its Start failed (the peer rejected our certificate, its old session ticket included)", v.name, target.name)
	return nil
}

// after sends one more rumor and checks that it reaches every trusted
// node, over connections the revocation left alone, and not the revoked
// node.
func (r *runner) after() error {
	t := time.Now()
	origin := r.first[0]
	rumor := origin.name + "/2"
	origin.originate(rumor)
	r.rumors = append(r.rumors, rumor)
	err := r.m.await(stepTimeout, func() (string, error) {
		return r.m.everyoneKnows(r.alive, []string{rumor}), nil
	})
	if err == nil {
		err = r.m.drain()
	}
	if err != nil {
		return err
	}
	if missing := r.m.connected(r.alive); missing != "" {
		return errors.New(missing)
	}
	if _, ok := r.m.rec[r.victim].learnt[rumor]; ok {
		return fmt.Errorf("the revoked node %s received rumor %q", r.victim.name, rumor)
	}
	count := len(r.alive)
	r.p.step("after", time.Since(t), "rumor %s reached the %d trusted nodes; their %s untouched, the revoked node %s got nothing", rumor, count, plural(count*(count-1)/2, "connection"), r.victim.name)
	return nil
}

// shutdown closes every message stream and checks that each delivered
// every message sent on it, then closes every connection with code 0.
func (r *runner) shutdown() error {
	r.m.mayEnd = func(a, b *node) bool { return true }
	t := time.Now()
	for _, n := range r.alive {
		if err := n.closeStreams(); err != nil {
			return err
		}
	}
	err := r.m.await(stepTimeout, func() (string, error) {
		for _, a := range r.alive {
			for _, b := range r.alive {
				if _, ok := r.m.rec[b].ends[a.id]; a != b && !ok {
					return fmt.Sprintf("the message stream from %s to %s has not ended", a.name, b.name), nil
				}
			}
		}
		return "", nil
	})
	if err != nil {
		return err
	}
	var messages int64
	dups := 0
	for _, a := range r.alive {
		for _, b := range r.alive {
			if a == b {
				continue
			}
			p := a.peer(b.id)
			if p == nil {
				return fmt.Errorf("the connection from %s to %s ended before its message stream was counted", a.name, b.name)
			}
			sent, got := p.sent.Load(), r.m.rec[b].ends[a.id]
			if int64(got) != sent {
				return fmt.Errorf("a message lost on the stream from %s to %s: %d sent, %d received", a.name, b.name, sent, got)
			}
			messages += sent
		}
		a.mu.Lock()
		dups += a.dups
		a.mu.Unlock()
	}
	count := len(r.alive)
	r.p.step("streams", time.Since(t), "%d message streams closed, each delivered every message sent on it: %d rumors in all (nodes dropped %d copies of rumors they knew)", count*(count-1), messages, dups)

	t = time.Now()
	for _, a := range r.alive {
		for _, l := range r.m.rec[a].links {
			if l.dialed && l.down.IsZero() {
				l.conn.Shutdown(0)
			}
		}
	}
	err = r.m.await(stepTimeout, func() (string, error) {
		for _, a := range r.alive {
			for _, b := range r.alive {
				if a != b && r.m.rec[a].links[b.id].down.IsZero() {
					return fmt.Sprintf("the connection from %s to %s is still up", a.name, b.name), nil
				}
			}
		}
		return "", nil
	})
	if err != nil {
		return err
	}
	for _, a := range r.alive {
		for _, b := range r.alive {
			if a == b {
				continue
			}
			l := r.m.rec[a].links[b.id]
			if !closedWithZero(l.err) {
				return fmt.Errorf("node %s: the connection to %s ended with %v, want code 0", a.name, b.name, l.err)
			}
		}
	}
	r.p.step("shutdown", time.Since(t), "%s closed with code 0", plural(count*(count-1)/2, "connection"))
	return nil
}

// closedWithZero reports whether err, a connection's final error, is a
// close with code 0 by either side.
func closedWithZero(err error) bool {
	ce, ok := errors.AsType[*qerr.ConnectionError](err)
	return ok && (ce.Reason == qerr.ShutdownByLocal || ce.Reason == qerr.ShutdownByPeer) && ce.Code == 0
}
