package conntest_test

// The mesh simulation: a validator-sized full mesh of quicconn nodes over
// WAN-like links in fake time, broadcasting on message streams through a
// partition longer than the idle timeout, a heal and a re-mesh. By default it
// runs 20 nodes; with -soak, 100 (4,950 connections).

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/quicconn/quicconn/conn"
	"github.com/quicconn/quicconn/conntest"
	qerr "github.com/quicconn/quicconn/errors"
	"github.com/quicconn/quicconn/stream"
)

const (
	simIdle      = 15 * time.Second
	simKeepAlive = 5 * time.Second
	simPerPeer   = 2           // messages each node sends each peer per round
	simMaxMsg    = 16 + 1024   // header and the largest body
	simBound     = time.Minute // fake time any one phase may take
)

func TestMeshSimulation(t *testing.T) {
	nodes := 20
	if *soak {
		nodes = 100
	}
	wall := time.Now()
	var r simResult
	synctest.Test(t, func(t *testing.T) { r = runMeshSim(t, nodes) })
	if t.Failed() {
		return
	}
	t.Logf("mesh-sim: nodes=%d conns=%d msgs=%d delivered=%d fake=%.1fs real=%.1fs heap=%dMiB goroutines=%d",
		nodes, r.conns, r.msgs, r.delivered, r.fake.Seconds(), time.Since(wall).Seconds(), r.heap>>20, r.goroutines)
	t.Logf("mesh-sim: partition %d+%d for %v cut %d connections (all ended by IdleTimeout after %v); re-mesh made %d in %v",
		r.groupA, nodes-r.groupA, r.partition.Round(time.Second), r.cut, r.idleAfter.Round(time.Second), r.remeshed, r.remesh.Round(time.Millisecond))
}

type simResult struct {
	conns, msgs, delivered int
	fake                   time.Duration
	heap                   uint64
	goroutines             int

	groupA, cut, remeshed int
	partition, idleAfter  time.Duration
	remesh                time.Duration
}

// msgKey names one message: from node to node, in a round, the seq-th.
type msgKey struct{ from, to, round, seq int }

// simMessage is the message k: a header naming k and a body of 0 to 1024
// bytes that only k produces, so the receiver can check it is intact.
func simMessage(k msgKey) []byte {
	r := rand.New(rand.NewPCG(uint64(k.from)<<32|uint64(k.to), uint64(k.round)<<32|uint64(k.seq)))
	b := make([]byte, 16+r.IntN(simMaxMsg-16+1))
	for i, v := range []int{k.from, k.to, k.round, k.seq} {
		binary.BigEndian.PutUint32(b[4*i:], uint32(v))
	}
	for i := 16; i < len(b); i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}

// simSide is one node's end of the connection to one peer: the stream it
// broadcasts on and the goroutine reading the peer's stream.
type simSide struct {
	node, peer int
	c          *conn.Connection
	send       *stream.SendStream
	readDone   chan struct{} // closed when the reader has returned
	readErr    error         // why it returned; set before readDone closes
}

type meshSim struct {
	t     *testing.T
	m     *conntest.Mesh
	sides [][]*simSide // [node][peer] for the current connections

	mu        sync.Mutex
	got       map[msgKey]int
	want      map[msgKey]bool // sent while connected, so it must arrive
	delivered int
	unwanted  int         // deliveries of messages that were not wanted
	bad       int         // messages that were not intact
	pending   map[int]int // per round: wanted messages not yet delivered
	roundDone map[int]chan struct{}

	heap       uint64
	goroutines int
}

func runMeshSim(t *testing.T, nodes int) simResult {
	start := time.Now()
	var res simResult
	n := conntest.NewNetwork(conntest.Link{})
	// WAN-like: every pair of hosts gets its own one-way delay from 10 to
	// 150 ms, jitter of a tenth of it and 0.5 % loss.
	rng := rand.New(rand.NewPCG(12, 0))
	for i := range nodes {
		for j := i + 1; j < nodes; j++ {
			d := time.Duration(10+rng.IntN(141)) * time.Millisecond
			n.SetLink(hostOf(i), hostOf(j), conntest.Link{Loss: 0.005, Delay: d, Jitter: d / 10, Seed: int64(i*nodes + j)})
		}
	}
	s := &meshSim{
		t:         t,
		got:       make(map[msgKey]int),
		want:      make(map[msgKey]bool),
		pending:   make(map[int]int),
		roundDone: make(map[int]chan struct{}),
	}
	s.m = conntest.NewMesh(t, n, nodes, conntest.WithSettings(conn.Settings{
		IdleTimeout: simIdle, KeepAlive: simKeepAlive, MaxMessageSize: simMaxMsg,
	}))
	res.conns = nodes * (nodes - 1) / 2
	t.Logf("mesh of %d connections built in %v of fake time", res.conns, time.Since(start).Round(time.Millisecond))
	s.sides = make([][]*simSide, nodes)
	for i := range nodes {
		s.sides[i] = make([]*simSide, nodes)
	}
	s.open(func(int, int) bool { return true })
	s.sample()

	// Round 0: everyone to everyone.
	s.round(0, func(int, int) bool { return true }, nil)
	s.sample()

	// The partition: the first two thirds against the rest, for twice the
	// idle timeout. Round 1 broadcasts inside it: within a group every
	// message must arrive; across the cut none can.
	res.groupA = nodes * 67 / 100
	inA := func(i int) bool { return i < res.groupA }
	across := func(i, j int) bool { return inA(i) != inA(j) }
	within := func(i, j int) bool { return !across(i, j) }
	cutAt := time.Now()
	n.Partition(s.m.Hosts(0, res.groupA), s.m.Hosts(res.groupA, nodes))
	s.round(1, within, across)
	// Every blocked read across the cut returns, with the idle timeout.
	idleBound := time.After(simIdle + simBound)
	for i := range nodes {
		for j := range nodes {
			if i == j || !across(i, j) {
				continue
			}
			sd := s.sides[i][j]
			select {
			case <-sd.readDone:
			case <-idleBound:
				t.Fatalf("node %d's read from node %d still blocked %v after the cut", i, j, time.Since(cutAt))
			}
			res.cut++
			var ce *qerr.ConnectionError
			if !errors.As(sd.readErr, &ce) || ce.Reason != qerr.IdleTimeout {
				t.Errorf("node %d's read from node %d across the cut: %v, want a ConnectionError with Reason IdleTimeout", i, j, sd.readErr)
			}
			<-sd.c.WatchShutdown()
			if !errors.As(sd.c.Err(), &ce) || ce.Reason != qerr.IdleTimeout {
				t.Errorf("node %d's connection to node %d: Err = %v, want Reason IdleTimeout", i, j, sd.c.Err())
			}
		}
	}
	res.cut /= 2 // each connection has two sides
	res.idleAfter = time.Since(cutAt)
	if res.idleAfter < simIdle {
		t.Errorf("connections across the cut ended %v after it, before the %v idle timeout", res.idleAfter, simIdle)
	}
	s.sample()
	time.Sleep(2*simIdle - time.Since(cutAt))
	res.partition = time.Since(cutAt)
	for i := range nodes {
		for j := range nodes {
			if i != j && within(i, j) && s.sides[i][j].c.State() != conn.Connected {
				t.Errorf("node %d's connection to node %d in its own group is %v after the partition", i, j, s.sides[i][j].c.State())
			}
		}
	}

	// Heal and re-mesh: a new connection for every pair across the cut,
	// then everyone to everyone again, on the old streams within the
	// groups and new ones across.
	n.Heal()
	remeshAt := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), simBound)
	defer cancel()
	made, err := s.m.Remesh(ctx)
	if err != nil {
		t.Fatalf("Remesh: %v", err)
	}
	res.remesh, res.remeshed = time.Since(remeshAt), made
	if made != res.cut {
		t.Errorf("Remesh made %d connections, want the %d cut ones", made, res.cut)
	}
	s.open(across)
	s.sample()
	s.round(2, func(int, int) bool { return true }, nil)
	s.sample()

	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.want {
		if c := s.got[k]; c != 1 {
			t.Errorf("message %+v arrived %d times, want once", k, c)
		}
	}
	if s.unwanted != 0 || s.bad != 0 {
		t.Errorf("%d deliveries of messages sent across the cut, %d damaged messages; want none", s.unwanted, s.bad)
	}
	res.msgs, res.delivered = len(s.want), s.delivered
	res.fake, res.heap, res.goroutines = time.Since(start), s.heap, s.goroutines
	return res
}

func hostOf(i int) string { return fmt.Sprintf("10.0.%d.%d", (i+1)>>8, (i+1)&0xff) }

// sample records the peak heap and goroutine counts.
func (s *meshSim) sample() {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s.heap = max(s.heap, ms.HeapAlloc)
	s.goroutines = max(s.goroutines, runtime.NumGoroutine())
}

// open makes the sides of the current connections between the pairs that
// pick chooses: each opens its message stream and starts reading its
// peer's.
func (s *meshSim) open(pick func(i, j int) bool) {
	ctx, cancel := context.WithTimeout(context.Background(), simBound)
	defer cancel()
	var wg sync.WaitGroup
	for i := range s.sides {
		for j := range s.sides {
			if i == j || !pick(i, j) {
				continue
			}
			sd := &simSide{node: i, peer: j, c: s.m.Node(i).Conn(j), readDone: make(chan struct{})}
			s.sides[i][j] = sd
			wg.Go(func() {
				var err error
				if sd.send, err = sd.c.OpenSendStream(ctx); err != nil {
					s.t.Errorf("node %d: OpenSendStream to node %d: %v", i, j, err)
				}
			})
			go s.read(sd)
		}
	}
	wg.Wait()
}

// read reads the messages of one peer until the connection ends.
func (s *meshSim) read(sd *simSide) {
	defer close(sd.readDone)
	rs, err := sd.c.AcceptInboundUniStream(context.Background())
	if err != nil {
		sd.readErr = err
		return
	}
	mr := stream.NewMessageReader(rs, simMaxMsg)
	for {
		msg, err := mr.ReadMessage()
		if err != nil {
			sd.readErr = err
			return
		}
		s.deliver(sd, msg)
	}
}

func (s *meshSim) deliver(sd *simSide, msg []byte) {
	var k msgKey
	intact := len(msg) >= 16
	if intact {
		k = msgKey{
			int(binary.BigEndian.Uint32(msg)), int(binary.BigEndian.Uint32(msg[4:])),
			int(binary.BigEndian.Uint32(msg[8:])), int(binary.BigEndian.Uint32(msg[12:])),
		}
		intact = k.from == sd.peer && k.to == sd.node && bytes.Equal(msg, simMessage(k))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case !intact:
		s.bad++
	case !s.want[k]:
		s.unwanted++
	default:
		s.delivered++
		if s.got[k]++; s.got[k] == 1 {
			if s.pending[k.round]--; s.pending[k.round] == 0 {
				close(s.roundDone[k.round])
			}
		}
	}
}

// round has every node send simPerPeer messages to each peer that wanted
// picks, which must all arrive, and to each that doomed picks, over
// connections that cannot deliver them. It returns when the wanted messages
// have arrived.
func (s *meshSim) round(r int, wanted, doomed func(i, j int) bool) {
	s.mu.Lock()
	done := make(chan struct{})
	s.roundDone[r] = done
	for i := range s.sides {
		for j := range s.sides {
			if i != j && wanted(i, j) {
				for q := range simPerPeer {
					s.want[msgKey{i, j, r, q}] = true
					s.pending[r]++
				}
			}
		}
	}
	if s.pending[r] == 0 {
		close(done)
	}
	s.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), simBound)
	defer cancel()
	var wg sync.WaitGroup
	for i := range s.sides {
		for j := range s.sides {
			must := i != j && wanted(i, j)
			if !must && (i == j || doomed == nil || !doomed(i, j)) {
				continue
			}
			sd := s.sides[i][j]
			wg.Go(func() {
				for q := range simPerPeer {
					err := sd.send.Send(ctx, simMessage(msgKey{i, j, r, q}))
					if err != nil && must {
						s.t.Errorf("round %d: node %d: Send to node %d: %v", r, i, j, err)
					}
				}
			})
		}
	}
	wg.Wait()
	select {
	case <-done:
	case <-time.After(simBound):
		s.mu.Lock()
		defer s.mu.Unlock()
		s.t.Fatalf("round %d: %d messages still missing after %v", r, s.pending[r], simBound)
	}
}
