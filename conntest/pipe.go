package conntest

import (
	"errors"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// pipe is what the two ends share: one mutex guards both PacketConns, so a
// packet moves from one end to the other under a single lock.
type pipe struct {
	mu  sync.Mutex
	cut bool // Partition
}

// PacketConn is one end of an in-memory UDP pipe made by NewPipe. It is a
// net.PacketConn, safe for concurrent use, whose only peer is the other end:
// what it writes to the peer's address goes through its Link to the peer's
// receive buffer, and ReadFrom takes packets from its own receive buffer.
//
// Like UDP, WriteTo never blocks: a packet the link cannot carry is dropped
// and counted in Stats, and WriteTo still reports success. ReadFrom blocks
// until a packet arrives, the read deadline passes or the PacketConn is
// closed.
type PacketConn struct {
	p    *pipe
	peer *PacketConn
	addr *net.UDPAddr
	done chan struct{} // closed by Close; wakes blocked readers

	// Guarded by p.mu. The sending side: packets this end writes.
	link       Link
	rng        *rand.Rand
	stream     uint64
	lastDepart time.Time // when the link finishes sending its last queued packet
	lastArrive time.Time // delivery time of the last in-order packet
	stats      LinkStats

	// Guarded by p.mu. The receiving side: packets on their way here.
	wire          wire
	rx            fifo
	rxLimit       int
	closed        bool
	readDeadline  time.Time
	writeDeadline time.Time
	// changed is non-nil while a reader waits; closing it wakes every reader
	// to look again (a new packet is due sooner, or the read deadline moved).
	// A reader takes it under the lock before it sleeps, and whoever changes
	// what the reader waits for closes it under the same lock, so no wake-up
	// is missed.
	changed chan struct{}
}

var (
	_ net.PacketConn = (*PacketConn)(nil)
	// quic-go raises the buffer sizes of any conn with these methods, and logs
	// a warning for a conn without them.
	_ interface{ SetReadBuffer(int) error }  = (*PacketConn)(nil)
	_ interface{ SetWriteBuffer(int) error } = (*PacketConn)(nil)
)

var errMissingAddress = errors.New("missing address")

// NewPipe returns the two ends of an in-memory UDP link, a at 127.0.0.1:1 and
// b at 127.0.0.2:1 (LocalAddr returns a *net.UDPAddr). Both directions start
// with the impairments of l; SetLink changes one direction. The addresses are
// labels, not sockets: any number of pipes can exist at once, and a packet
// written on one pipe only ever reaches the other end of that pipe.
//
// NewPipe starts no goroutine. To use the pipe inside a testing/synctest
// bubble, call NewPipe inside the bubble. NewPipe panics if a field of l is
// out of range (see Link).
func NewPipe(l Link) (a, b *PacketConn) {
	l.validate()
	p := &pipe{}
	newEnd := func(ip net.IP, stream uint64) *PacketConn {
		return &PacketConn{
			p:       p,
			addr:    &net.UDPAddr{IP: ip, Port: 1},
			done:    make(chan struct{}),
			link:    l,
			rng:     newRand(l.Seed, stream),
			stream:  stream,
			rxLimit: DefaultReadBuffer,
		}
	}
	a = newEnd(net.IPv4(127, 0, 0, 1).To4(), 1)
	b = newEnd(net.IPv4(127, 0, 0, 2).To4(), 2)
	a.peer, b.peer = b, a
	return a, b
}

// SetLink changes the impairments of the packets this end sends from now on;
// packets already in flight keep their delivery times. If l.Seed differs from
// the current seed the random source restarts from l.Seed, otherwise it goes
// on where it was. SetLink panics if a field of l is out of range.
func (c *PacketConn) SetLink(l Link) {
	l.validate()
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	if l.Seed != c.link.Seed {
		c.rng = newRand(l.Seed, c.stream)
	}
	c.link = l
}

// Partition cuts the pipe (cut true) or heals it (cut false). It acts on both
// directions, whichever end it is called on. Cutting drops the packets in
// flight in both directions, and while the pipe is cut every packet written
// is dropped; each counts as Dropped in its sender's Stats. Packets that
// already reached a receive buffer stay there.
func (c *PacketConn) Partition(cut bool) {
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	if cut && !c.p.cut {
		now := time.Now()
		for _, end := range []*PacketConn{c, c.peer} {
			if !end.closed {
				end.arrive(now)
			}
			end.peer.stats.Dropped += uint64(end.wire.clear())
			end.peer.lastDepart, end.peer.lastArrive = time.Time{}, time.Time{}
		}
	}
	c.p.cut = cut
}

// Stats returns the counts for the packets this end has sent (the direction
// from this end to its peer).
func (c *PacketConn) Stats() LinkStats {
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	if !c.peer.closed {
		c.peer.arrive(time.Now())
	}
	return c.stats
}

// WriteTo sends b to addr. It copies b, so the caller may reuse it at once.
// A packet to any address but the peer's is dropped silently (and counted as
// Dropped), like a datagram to a host that does not exist. WriteTo returns
// len(b) and nil for every packet it accepts, whatever the link does with it;
// it fails only when the PacketConn is closed (net.ErrClosed), the write
// deadline has passed (os.ErrDeadlineExceeded) or addr is nil. Errors are
// *net.OpError values.
func (c *PacketConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	switch now := time.Now(); {
	case c.closed:
		return 0, c.opError("write", addr, net.ErrClosed)
	case !c.writeDeadline.IsZero() && !now.Before(c.writeDeadline):
		return 0, c.opError("write", addr, os.ErrDeadlineExceeded)
	case addr == nil:
		return 0, c.opError("write", nil, errMissingAddress)
	default:
		c.stats.Sent++
		c.send(b, addr, now)
		return len(b), nil
	}
}

// send puts a copy of b on the link towards the peer. Called with p.mu held.
func (c *PacketConn) send(b []byte, addr net.Addr, now time.Time) {
	if !sameAddr(addr, c.peer.addr) {
		c.stats.Dropped++
		return
	}
	d := decide(c.rng, &c.link)
	if c.p.cut || c.peer.closed || (c.link.MTU > 0 && len(b) > c.link.MTU) {
		c.stats.Dropped++
		return
	}
	depart := now
	if bw := c.link.Bandwidth; bw > 0 {
		start := now
		if c.lastDepart.After(now) {
			start = c.lastDepart
		}
		if start.Sub(now) > MaxQueueDelay {
			c.stats.Dropped++ // the router buffer is full
			return
		}
		c.lastDepart = start.Add(transmitTime(len(b), bw))
		depart = c.lastDepart
	}
	if d.lose {
		c.stats.Dropped++
		return
	}
	c.peer.arrive(now) // move what is due out of the way before adding more
	c.put(b, depart.Add(c.link.Delay+d.jitter), d.reorder, d.hold)
	if d.duplicate {
		c.stats.Duplicated++
		c.put(b, depart.Add(c.link.Delay+d.dupJitter), false, 0)
	}
}

// put schedules one copy of b to reach the peer at at, or at hold after the
// last in-order packet if that is later. Called with p.mu held.
func (c *PacketConn) put(b []byte, at time.Time, reorder bool, hold time.Duration) {
	w := &c.peer.wire
	if w.bytes+len(b) > maxInFlight {
		c.stats.Dropped++
		return
	}
	if at.Before(c.lastArrive) {
		at = c.lastArrive // in order: never overtake an earlier packet
	}
	if reorder {
		c.stats.Reordered++
		at = at.Add(hold) // and leave lastArrive, so later packets overtake it
	} else {
		c.lastArrive = at
	}
	pkt := &packet{data: append([]byte(nil), b...), at: at}
	w.push(pkt)
	if w.head() == pkt {
		c.peer.wake() // a reader sleeping until the old head must look again
	}
}

// arrive moves the packets that are due at now from the wire to the receive
// buffer, dropping those that do not fit. Doing it lazily, whenever either end
// looks, gives the same result as doing it at each delivery time: the buffer
// only drains in ReadFrom, which calls arrive first. Called with p.mu held.
func (c *PacketConn) arrive(now time.Time) {
	for {
		pkt := c.wire.head()
		if pkt == nil || pkt.at.After(now) {
			return
		}
		c.wire.pop()
		if c.rx.bytes+len(pkt.data) > c.rxLimit {
			c.peer.stats.Dropped++
			continue
		}
		c.rx.push(pkt)
		c.peer.stats.Delivered++
	}
}

// wake wakes every reader waiting in ReadFrom. Called with p.mu held.
func (c *PacketConn) wake() {
	if c.changed != nil {
		close(c.changed)
		c.changed = nil
	}
}

// ReadFrom reads the next packet into b and returns its length and the
// peer's address. A packet longer than b is truncated to len(b) and the rest
// is lost, as recvfrom does on Linux. ReadFrom blocks until a packet arrives;
// it fails with os.ErrDeadlineExceeded once the read deadline has passed (even
// if packets are waiting, as a socket does) and with net.ErrClosed once the
// PacketConn is closed, including when Close is called while it waits. Errors
// are *net.OpError values.
//
// The wait is a timer until the next packet's delivery time and a channel for
// changes, both made by the calling goroutine, so in a synctest bubble a
// blocked ReadFrom is durably blocked and fake time advances to the delivery.
func (c *PacketConn) ReadFrom(b []byte) (int, net.Addr, error) {
	c.p.mu.Lock()
	for {
		if c.closed {
			c.p.mu.Unlock()
			return 0, nil, c.opError("read", nil, net.ErrClosed)
		}
		now := time.Now()
		deadline := c.readDeadline
		if !deadline.IsZero() && !now.Before(deadline) {
			// before looking for packets, as a socket does: quic-go stops
			// its read loop by setting a deadline in the past
			c.p.mu.Unlock()
			return 0, nil, c.opError("read", nil, os.ErrDeadlineExceeded)
		}
		c.arrive(now)
		if c.rx.len() > 0 {
			pkt := c.rx.pop()
			c.p.mu.Unlock()
			return copy(b, pkt.data), c.peer.addr, nil
		}
		wakeAt := deadline
		if h := c.wire.head(); h != nil && (wakeAt.IsZero() || h.at.Before(wakeAt)) {
			wakeAt = h.at
		}
		if c.changed == nil {
			c.changed = make(chan struct{})
		}
		changed := c.changed
		c.p.mu.Unlock()

		var timer *time.Timer
		var fire <-chan time.Time
		if !wakeAt.IsZero() {
			timer = time.NewTimer(wakeAt.Sub(now))
			fire = timer.C
		}
		select {
		case <-changed:
		case <-fire:
		case <-c.done:
		}
		if timer != nil {
			timer.Stop()
		}
		c.p.mu.Lock()
	}
}

// Close closes the PacketConn: blocked and later ReadFrom and WriteTo calls
// fail with net.ErrClosed, unread packets are discarded, and packets still in
// flight to it are dropped (counted in the peer's Stats). The peer stays open;
// what it sends from now on is dropped. Closing twice returns net.ErrClosed.
func (c *PacketConn) Close() error {
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	if c.closed {
		return c.opError("close", nil, net.ErrClosed)
	}
	c.arrive(time.Now())
	c.closed = true
	close(c.done)
	c.rx.clear()
	c.peer.stats.Dropped += uint64(c.wire.clear())
	c.changed = nil
	return nil
}

// LocalAddr returns the address of this end: 127.0.0.1:1 for the first end of
// NewPipe and 127.0.0.2:1 for the second.
func (c *PacketConn) LocalAddr() net.Addr { return c.addr }

// SetDeadline sets the read and write deadlines, as SetReadDeadline and
// SetWriteDeadline do.
func (c *PacketConn) SetDeadline(t time.Time) error {
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	c.readDeadline, c.writeDeadline = t, t
	c.wake()
	return nil
}

// SetReadDeadline sets when blocked and future ReadFrom calls fail with
// os.ErrDeadlineExceeded; the zero time means no deadline. A new deadline
// applies to a ReadFrom that is already waiting.
func (c *PacketConn) SetReadDeadline(t time.Time) error {
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	c.readDeadline = t
	c.wake()
	return nil
}

// SetWriteDeadline sets when future WriteTo calls fail with
// os.ErrDeadlineExceeded; the zero time means no deadline. WriteTo never
// blocks, so the deadline only matters once it has passed.
func (c *PacketConn) SetWriteDeadline(t time.Time) error {
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	c.writeDeadline = t
	return nil
}

// SetReadBuffer sets the size in bytes of the receive buffer (the packets
// that arrived and wait for ReadFrom); packets that arrive when it is full are
// dropped. The default is DefaultReadBuffer. quic-go calls it when it starts
// using the conn and raises it to 7 MiB, as it does for a UDP socket.
func (c *PacketConn) SetReadBuffer(bytes int) error {
	if bytes < 0 {
		return c.opError("set", nil, syscall.EINVAL)
	}
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	c.rxLimit = bytes
	return nil
}

// SetWriteBuffer exists so that quic-go finds the method it looks for and
// does not log a warning; WriteTo never blocks, and the queue that bounds
// what is waiting to be sent is the bandwidth queue of Link.
func (c *PacketConn) SetWriteBuffer(bytes int) error {
	if bytes < 0 {
		return c.opError("set", nil, syscall.EINVAL)
	}
	return nil
}

func (c *PacketConn) opError(op string, addr net.Addr, err error) error {
	return &net.OpError{Op: op, Net: "udp", Source: c.addr, Addr: addr, Err: err}
}

// sameAddr reports whether addr names the UDP address want.
func sameAddr(addr net.Addr, want *net.UDPAddr) bool {
	if u, ok := addr.(*net.UDPAddr); ok {
		return u.Port == want.Port && u.IP.Equal(want.IP) && u.Zone == want.Zone
	}
	return addr.Network() == "udp" && addr.String() == want.String()
}
