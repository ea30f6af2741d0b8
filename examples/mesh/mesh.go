package main

// The mesh: the nodes of a run, and what their connections report. The
// nodes' goroutines send events; the run's goroutine alone reads them and
// keeps what they say in a record per node, so that every wait of the run
// is a loop over events with a deadline, and no wait polls.

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/quicconn/quicconn/certverify"
	"github.com/quicconn/quicconn/conn"
)

// eventKind says what an event reports.
type eventKind uint8

const (
	linkUp       eventKind = iota + 1 // a connection is ready at node
	linkDown                          // a connection reached ShutdownComplete (WatchShutdown)
	dialFailed                        // node's Start to peer failed
	refused                           // node's listener saw a handshake fail
	learnt                            // node learnt a rumor, new to it
	heartbeatIn                       // node received a datagram
	replied                           // node's request to peer was answered, or failed
	streamEnd                         // a message stream to node ended with the peer's Close
	problemFound                      // something that cannot happen in a good run
)

// event is one thing a node saw, at a time.
type event struct {
	kind   eventKind
	node   *node
	peer   certverify.CertHash // the other end, when known
	at     time.Time
	conn   *conn.Connection // linkUp
	dialed bool             // linkUp: node started the connection
	err    error            // linkDown: the connection's Err; dialFailed, refused, replied, problemFound
	rumor  string           // learnt; replied: the reply
	took   time.Duration    // heartbeatIn: its one-way latency; replied: the round trip
	count  int              // streamEnd: the messages the stream carried
}

// eventBuffer holds the events of the busiest step, the datagrams of the
// largest mesh (3 per direction of each of its connections), so that nodes
// rarely wait for the run's goroutine.
const eventBuffer = 4 * maxNodes * maxNodes

// stepTimeout bounds every step that waits; revocation has its own,
// shorter bound (revokeTimeout).
const stepTimeout = 5 * time.Second

// mesh is the nodes of a run and the events they report.
type mesh struct {
	ctx    context.Context // ends when the run ends: every node's blocking call returns
	cancel context.CancelFunc
	conf   *conn.Configuration
	log    *slog.Logger
	wg     sync.WaitGroup // every goroutine of every node
	events chan event

	// Read and written by the run's goroutine only.
	nodes    []*node
	byID     map[certverify.CertHash]*node
	rec      map[*node]*record
	mayEnd   func(a, b *node) bool // whether the connection between a and b may end now
	problems []error
}

// record is what the run knows of one node, from its events.
type record struct {
	links     map[certverify.CertHash]*link  // by the peer's identity
	learnt    map[string]time.Time           // rumor → when the node learnt it
	from      map[string]certverify.CertHash // rumor → the peer it came from first
	dialErrs  map[certverify.CertHash]error  // by the peer dialled
	refusals  []error
	latencies []time.Duration // of the heartbeats received
	replies   []reply
	ends      map[certverify.CertHash]int // messages on the stream from a peer, once ended
}

// reply is the answer to one request.
type reply struct {
	peer certverify.CertHash
	text string
	rtt  time.Duration
	err  error
}

// link is one node's end of a connection.
type link struct {
	conn     *conn.Connection
	dialed   bool
	up, down time.Time // zero until seen
	err      error     // the connection's Err, at down
}

func newRecord() *record {
	return &record{
		links:    make(map[certverify.CertHash]*link),
		learnt:   make(map[string]time.Time),
		from:     make(map[string]certverify.CertHash),
		dialErrs: make(map[certverify.CertHash]error),
		ends:     make(map[certverify.CertHash]int),
	}
}

// newMesh returns a mesh with no node. Its connections offer datagrams.
func newMesh(ctx context.Context, log *slog.Logger) *mesh {
	conf, err := conn.NewConfiguration([]string{alpn}, conn.Settings{
		HandshakeTimeout:       stepTimeout,
		DatagramReceiveEnabled: true,
	})
	if err != nil {
		panic(err) // the values above are valid
	}
	m := &mesh{
		conf:   conf,
		log:    log,
		events: make(chan event, eventBuffer),
		byID:   make(map[certverify.CertHash]*node),
		rec:    make(map[*node]*record),
		mayEnd: func(a, b *node) bool { return false },
	}
	m.ctx, m.cancel = context.WithCancel(ctx)
	return m
}

// close ends the run: it closes every node's Registration, which shuts
// down its listener and connections, and waits for every node goroutine.
func (m *mesh) close() {
	m.cancel()
	for _, n := range m.nodes {
		n.reg.Close()
	}
	m.wg.Wait()
}

// emit hands an event to the run; once the run has ended it is dropped.
func (m *mesh) emit(ev event) {
	select {
	case m.events <- ev:
	case <-m.ctx.Done():
	}
}

// problem reports something that cannot happen in a good run.
func (m *mesh) problem(err error) {
	m.emit(event{kind: problemFound, at: time.Now(), err: err})
}

// check reports err as a problem unless it says only that its connection,
// or the run, has ended.
func (m *mesh) check(err error) {
	if !ended(m.ctx, err) {
		m.problem(err)
	}
}

// await reads events until pending reports nothing left to wait for, a
// problem is reported, or timeout passes. pending says what is still
// missing, or fails the step at once.
func (m *mesh) await(timeout time.Duration, pending func() (string, error)) error {
	ctx, cancel := context.WithTimeout(m.ctx, timeout)
	defer cancel()
	for {
		if len(m.problems) > 0 {
			return m.problems[0]
		}
		missing, err := pending()
		if err != nil {
			return err
		}
		if missing == "" {
			return nil
		}
		select {
		case ev := <-m.events:
			m.apply(ev)
		case <-ctx.Done():
			if m.ctx.Err() != nil {
				return m.ctx.Err() // interrupted
			}
			return &timeoutError{missing, timeout}
		}
	}
}

// timeoutError is the error of a step that did not finish in time.
type timeoutError struct {
	missing string
	after   time.Duration
}

func (e *timeoutError) Error() string { return fmt.Sprintf("%s after %v", e.missing, e.after) }

// drain applies the events already queued, without waiting.
func (m *mesh) drain() error {
	for {
		select {
		case ev := <-m.events:
			m.apply(ev)
		default:
			if len(m.problems) > 0 {
				return m.problems[0]
			}
			return nil
		}
	}
}

// apply records ev in its node's record.
func (m *mesh) apply(ev event) {
	if ev.kind == problemFound {
		m.problems = append(m.problems, ev.err)
		return
	}
	r := m.rec[ev.node]
	switch ev.kind {
	case linkUp:
		l := r.link(ev.peer)
		l.conn, l.dialed, l.up = ev.conn, ev.dialed, ev.at
	case linkDown:
		l := r.link(ev.peer)
		l.down, l.err = ev.at, ev.err
		if o := m.byID[ev.peer]; o == nil || !m.mayEnd(ev.node, o) {
			m.problems = append(m.problems, fmt.Errorf("node %s: the connection to %s ended unexpectedly: %v", ev.node.name, shortName(ev.peer), ev.err))
		}
	case dialFailed:
		r.dialErrs[ev.peer] = ev.err
	case refused:
		r.refusals = append(r.refusals, ev.err)
	case learnt:
		r.learnt[ev.rumor], r.from[ev.rumor] = ev.at, ev.peer
	case heartbeatIn:
		r.latencies = append(r.latencies, ev.took)
	case replied:
		r.replies = append(r.replies, reply{ev.peer, ev.rumor, ev.took, ev.err})
	case streamEnd:
		r.ends[ev.peer] = ev.count
	}
}

// link returns the record of the connection to id, made on first use.
func (r *record) link(id certverify.CertHash) *link {
	l := r.links[id]
	if l == nil {
		l = &link{}
		r.links[id] = l
	}
	return l
}

// up reports whether a's end of its connection to b is up and not down.
func (m *mesh) up(a, b *node) bool {
	l := m.rec[a].links[b.id]
	return l != nil && !l.up.IsZero() && l.down.IsZero()
}

// connected reports the first pair of nodes in nodes whose connection is
// not up at both ends, or "".
func (m *mesh) connected(nodes []*node) string {
	for i, a := range nodes {
		for _, b := range nodes[i+1:] {
			if !m.up(a, b) || !m.up(b, a) {
				return fmt.Sprintf("nodes %s and %s not connected", a.name, b.name)
			}
		}
	}
	return ""
}

// dialErr returns the first failed dial among nodes, which fails a step
// that expects none.
func (m *mesh) dialErr(nodes []*node) error {
	for _, n := range nodes {
		for id, err := range m.rec[n].dialErrs {
			return fmt.Errorf("node %s could not connect to %s: %w", n.name, shortName(id), err)
		}
	}
	return nil
}

// everyoneKnows reports the first node of nodes that has not learnt one
// of rumors, or "".
func (m *mesh) everyoneKnows(nodes []*node, rumors []string) string {
	for _, n := range nodes {
		for _, r := range rumors {
			if _, ok := m.rec[n].learnt[r]; !ok {
				return fmt.Sprintf("node %s has not received rumor %q (a message lost on a stream?)", n.name, r)
			}
		}
	}
	return ""
}
