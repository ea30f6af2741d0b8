package main

// A node: its identity, its listener, and the protocol it speaks on each
// connection. Everything a node's connections see is reported to the mesh
// as events (mesh.go); the node itself keeps only what the protocol needs.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quicconn/quicconn/certverify"
	"github.com/quicconn/quicconn/conn"
	qerr "github.com/quicconn/quicconn/errors"
	"github.com/quicconn/quicconn/stream"
)

// The protocol, on every connection, in both directions:
//
//   - one message stream (a unidirectional SendStream) carries rumors, one
//     message each; a node forwards a rumor it had not seen to all its
//     other peers, and sends every rumor it knows to a peer that joins;
//   - a bidirectional stream carries one request and its reply, both framed
//     as messages (MessageWriter and MessageReader);
//   - datagrams carry heartbeats: the send time, 8 bytes of Unix nanoseconds.
const (
	request     = "rumors?"
	replyFormat = "%d rumors"
)

// node is one member of the mesh, with its own Registration, identity and
// listener.
type node struct {
	name string // the first 8 hex digits of id
	id   certverify.CertHash
	cred *certverify.Credential
	reg  *conn.Registration
	ln   *conn.Listener
	port uint16
	m    *mesh

	mu     sync.Mutex
	peers  map[certverify.CertHash]*peer // live connections, by the peer's identity
	rumors []string                      // every rumor known, in the order learnt
	known  map[string]bool
	dups   int // rumors received again
}

// peer is a node's end of one connection.
type peer struct {
	id     certverify.CertHash
	c      *conn.Connection
	dialed bool // this node started the connection
	out    *stream.SendStream
	sent   atomic.Int64 // rumors sent on out
}

// shortName names an identity by its first 8 hex digits.
func shortName(id certverify.CertHash) string { return id.String()[:8] }

// newNode makes a node with a fresh self-signed certificate. It trusts
// nobody yet: with no pins its credential rejects every peer.
func (m *mesh) newNode() (*node, error) {
	cred, err := certverify.GenerateSelfSigned([]string{"mesh-node"}, nil)
	if err != nil {
		return nil, err
	}
	id := certverify.HashOf(cred.Certificate.Certificate[0])
	n := &node{
		name:  shortName(id),
		id:    id,
		cred:  cred,
		m:     m,
		peers: make(map[certverify.CertHash]*peer),
		known: make(map[string]bool),
	}
	n.reg = conn.NewRegistration("mesh-" + n.name)
	m.nodes = append(m.nodes, n)
	m.byID[id] = n
	m.rec[n] = newRecord()
	return n, nil
}

// listen starts the node's listener and the loop that accepts its
// connections.
func (n *node) listen() error {
	ln, err := conn.Listen(n.reg, "127.0.0.1:0", n.m.conf, n.cred, conn.WithLogger(n.m.log))
	if err != nil {
		return fmt.Errorf("node %s: listen: %w", n.name, err)
	}
	n.ln = ln
	n.port = uint16(ln.Addr().(*net.UDPAddr).Port)
	n.m.wg.Go(n.acceptLoop)
	return nil
}

// acceptLoop hands every connection to its own goroutine, which waits for
// its handshake. It returns when the listener is closed.
func (n *node) acceptLoop() {
	ctx := n.m.ctx
	for {
		c, err := n.ln.Accept(ctx)
		if err != nil {
			return
		}
		n.m.wg.Go(func() {
			ctx, cancel := context.WithTimeout(ctx, stepTimeout)
			defer cancel()
			if err := c.Accept(ctx); err != nil {
				n.m.emit(event{kind: refused, node: n, at: time.Now(), err: err})
				return
			}
			n.attach(c, false)
		})
	}
}

// dial connects n to o, in a goroutine of the mesh.
func (n *node) dial(o *node) {
	n.m.wg.Go(func() {
		c, err := conn.New(n.reg, n.cred, conn.WithLogger(n.m.log))
		if err == nil {
			ctx, cancel := context.WithTimeout(n.m.ctx, stepTimeout)
			err = c.Start(ctx, n.m.conf, "127.0.0.1", o.port)
			cancel()
		}
		if err != nil {
			n.m.emit(event{kind: dialFailed, node: n, peer: o.id, at: time.Now(), err: err})
			return
		}
		n.attach(c, true)
	})
}

// attach runs the protocol on a connection whose handshake is complete:
// it opens the node's message stream to the peer, sends it every rumor
// known, and serves what the peer sends until the connection ends. The
// link is reported up once the rumors are sent, so that when the mesh has
// seen a link up and every rumor learnt, no send is left in flight.
func (n *node) attach(c *conn.Connection, dialed bool) {
	ctx := n.m.ctx
	id, ok := c.RemoteIdentity()
	if !ok {
		n.m.problem(fmt.Errorf("node %s: a connected peer has no identity", n.name))
		c.Shutdown(1)
		return
	}
	p := &peer{id: id, c: c, dialed: dialed}
	n.m.wg.Go(func() {
		<-c.WatchShutdown()
		at := time.Now()
		n.mu.Lock()
		if n.peers[id] == p {
			delete(n.peers, id)
		}
		n.mu.Unlock()
		n.m.emit(event{kind: linkDown, node: n, peer: id, at: at, err: c.Err()})
	})
	out, err := c.OpenSendStream(ctx)
	if err != nil {
		n.m.check(fmt.Errorf("node %s: opening the message stream to %s: %w", n.name, shortName(id), err))
		return
	}
	p.out = out
	n.m.wg.Go(func() { n.readRumors(c, id) })
	n.m.wg.Go(func() { n.answerRequests(c) })
	n.m.wg.Go(func() { n.readHeartbeats(c, id) })

	n.mu.Lock()
	select {
	case <-c.WatchShutdown():
		// Already gone, and the watch above has run or will find no peer
		// to remove: its linkDown says how it ended.
		n.mu.Unlock()
		return
	default:
	}
	n.peers[id] = p
	backlog := slices.Clone(n.rumors)
	n.mu.Unlock()
	up := time.Now()
	for _, r := range backlog {
		n.send(p, r)
	}
	n.m.emit(event{kind: linkUp, node: n, peer: id, at: up, conn: c, dialed: dialed})
}

// originate starts a rumor at n.
func (n *node) originate(rumor string) {
	n.learn(rumor, certverify.CertHash{}, time.Now())
}

// learn records rumor, received from the peer from (zero when n made it),
// and forwards it to every other peer if it is new. It reports the rumor
// learnt once the forwarding sends have returned.
func (n *node) learn(rumor string, from certverify.CertHash, at time.Time) {
	n.mu.Lock()
	if n.known[rumor] {
		n.dups++
		n.mu.Unlock()
		return
	}
	n.known[rumor] = true
	n.rumors = append(n.rumors, rumor)
	to := make([]*peer, 0, len(n.peers))
	for id, p := range n.peers {
		if id != from {
			to = append(to, p)
		}
	}
	n.mu.Unlock()
	for _, p := range to {
		n.send(p, rumor)
	}
	n.m.emit(event{kind: learnt, node: n, peer: from, at: at, rumor: rumor})
}

// send sends one rumor on p's message stream.
func (n *node) send(p *peer, rumor string) {
	if err := p.out.Send(n.m.ctx, []byte(rumor)); err != nil {
		n.m.check(fmt.Errorf("node %s: sending a rumor to %s: %w", n.name, shortName(p.id), err))
		return
	}
	p.sent.Add(1)
}

// readRumors learns the rumors of each message stream the peer opens and
// reports how many a stream carried when it ends (the peer's Close).
func (n *node) readRumors(c *conn.Connection, from certverify.CertHash) {
	for {
		rs, err := c.AcceptInboundUniStream(n.m.ctx)
		if err != nil {
			n.m.check(fmt.Errorf("node %s: accepting a message stream from %s: %w", n.name, shortName(from), err))
			return
		}
		r := stream.NewMessageReader(rs, 0)
		count := 0
		for {
			msg, err := r.ReadMessage()
			if errors.Is(err, io.EOF) {
				n.m.emit(event{kind: streamEnd, node: n, peer: from, at: time.Now(), count: count})
				break
			}
			if err != nil {
				n.m.check(fmt.Errorf("node %s: reading the message stream from %s after %d rumors: %w", n.name, shortName(from), count, err))
				return
			}
			count++
			n.learn(string(msg), from, time.Now())
		}
	}
}

// answerRequests answers every request on the bidirectional streams the
// peer opens with the number of rumors n knows.
func (n *node) answerRequests(c *conn.Connection) {
	for {
		s, err := c.AcceptInboundStream(n.m.ctx)
		if err != nil {
			n.m.check(fmt.Errorf("node %s: accepting a request stream: %w", n.name, err))
			return
		}
		n.m.wg.Go(func() {
			req, err := stream.NewMessageReader(s, 0).ReadMessage()
			if err != nil {
				n.m.check(fmt.Errorf("node %s: reading a request: %w", n.name, err))
				return
			}
			if string(req) != request {
				s.CancelRead(1)
				s.CancelWrite(1)
				n.m.problem(fmt.Errorf("node %s: request %q, want %q", n.name, req, request))
				return
			}
			n.mu.Lock()
			reply := fmt.Sprintf(replyFormat, len(n.rumors))
			n.mu.Unlock()
			if err := stream.NewMessageWriter(s, 0).WriteMessage([]byte(reply)); err != nil {
				n.m.check(fmt.Errorf("node %s: replying: %w", n.name, err))
				return
			}
			s.Close()
		})
	}
}

// ask sends p the request on a new bidirectional stream and returns the
// reply and the round trip's time.
func (n *node) ask(ctx context.Context, p *peer) (string, time.Duration, error) {
	t := time.Now()
	s, err := p.c.OpenOutboundStream(ctx, stream.Bidirectional, false)
	if err != nil {
		return "", 0, err
	}
	if err := stream.NewMessageWriter(s, 0).WriteMessage([]byte(request)); err != nil {
		return "", 0, err
	}
	if err := s.Close(); err != nil {
		return "", 0, err
	}
	// The read has no context of its own: a deadline from ctx bounds it.
	if d, ok := ctx.Deadline(); ok {
		s.SetReadDeadline(d)
	}
	reply, err := stream.NewMessageReader(s, 0).ReadMessage()
	if err != nil {
		return "", 0, err
	}
	return string(reply), time.Since(t), nil
}

// heartbeat sends one datagram carrying the time it was sent.
func heartbeat(p *peer) error {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(time.Now().UnixNano()))
	return p.c.SendDatagram(b[:])
}

// readHeartbeats reports every heartbeat with the time it took to arrive
// (the nodes share a clock).
func (n *node) readHeartbeats(c *conn.Connection, from certverify.CertHash) {
	for {
		b, err := c.ReceiveDatagram(n.m.ctx)
		if err != nil {
			n.m.check(fmt.Errorf("node %s: receiving a datagram from %s: %w", n.name, shortName(from), err))
			return
		}
		if len(b) != 8 {
			n.m.problem(fmt.Errorf("node %s: a datagram of %d bytes from %s, want 8", n.name, len(b), shortName(from)))
			continue
		}
		sent := time.Unix(0, int64(binary.BigEndian.Uint64(b)))
		n.m.emit(event{kind: heartbeatIn, node: n, peer: from, at: time.Now(), took: time.Since(sent)})
	}
}

// closeStreams closes n's message streams: each peer reads to its end and
// reports how many rumors the stream carried.
func (n *node) closeStreams() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, p := range n.peers {
		if err := p.out.Close(); err != nil {
			return fmt.Errorf("node %s: closing the message stream to %s: %w", n.name, shortName(p.id), err)
		}
	}
	return nil
}

// peer returns n's end of the connection to id, or nil.
func (n *node) peer(id certverify.CertHash) *peer {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.peers[id]
}

// ended reports whether err, from a connection's operation, means only that
// the connection or the run has ended: how the connection ended is judged
// from its linkDown event, not from each operation that it stopped.
func ended(ctx context.Context, err error) bool {
	return ctx.Err() != nil || errors.Is(err, qerr.ErrConnectionLost) || errors.Is(err, net.ErrClosed)
}
