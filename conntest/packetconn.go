package conntest

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"

	"github.com/quicconn/quicconn/internal/gate"
)

// PacketConn is a UDP socket on an in-memory network: one end of a pipe
// made by NewPipe, or a socket opened by Network.ListenPacket. It is a
// net.PacketConn, safe for concurrent use: what it writes goes through the
// Link from its host to the destination's host and lands in the receive
// buffer of the socket at the destination address, and ReadFrom takes
// packets from its own receive buffer.
//
// Like UDP, WriteTo never blocks: a packet the network cannot carry is
// dropped and counted in Stats, and WriteTo still reports success. ReadFrom
// blocks until a packet arrives, the read deadline passes or the PacketConn
// is closed.
type PacketConn struct {
	n     *Network
	local *net.UDPAddr  // where it was opened: LocalAddr, which Rebind leaves alone
	done  chan struct{} // closed by Close; wakes blocked readers

	// Guarded by n.mu.
	ap    netip.AddrPort // where its packets come from and where packets reach it
	from  *net.UDPAddr   // ap, as receivers see it
	stats LinkStats      // the packets it sent

	// Guarded by n.mu. The receiving side: packets on their way here.
	wire          wire
	rx            fifo
	rxLimit       int
	closed        bool
	readDeadline  time.Time
	writeDeadline time.Time
	// changed is the event, valid while waiting is set, that wakes every
	// reader to look again (a new packet is due sooner, or the read deadline
	// moved). A reader takes it under the lock before it sleeps, and whoever
	// changes what the reader waits for sets it under the same lock, so no
	// wake-up is missed; the next reader makes a new one.
	changed *gate.Event
	waiting bool
}

var (
	_ net.PacketConn = (*PacketConn)(nil)
	// quic-go raises the buffer sizes of any conn with these methods, and logs
	// a warning for a conn without them.
	_ interface{ SetReadBuffer(int) error }  = (*PacketConn)(nil)
	_ interface{ SetWriteBuffer(int) error } = (*PacketConn)(nil)
)

var errMissingAddress = errors.New("missing address")

// setAddrLocked makes ap the address the socket sends from and receives at.
func (c *PacketConn) setAddrLocked(ap netip.AddrPort) {
	c.ap = ap
	c.from = net.UDPAddrFromAddrPort(ap)
	c.n.socks[ap] = c
}

// SetLink changes the impairments of the packets this socket's host sends
// to every other host from now on, as if Network.SetOneWayLink were called
// towards each of them, including hosts that appear later; for an end of a
// pipe that is the direction towards the other end. Packets already in
// flight keep their delivery times. If l.Seed differs from a direction's
// current seed its random source restarts from l.Seed, otherwise it goes on
// where it was. SetLink panics if a field of l is out of range.
func (c *PacketConn) SetLink(l Link) {
	l.validate()
	n := c.n
	n.mu.Lock()
	defer n.mu.Unlock()
	h := c.ap.Addr()
	n.host(h).out = &l
	for k, d := range n.dirs {
		if k.from == h && k.to != h {
			d.setLink(l)
		}
	}
}

// Partition cuts this socket's host off from every other host (cut true) or
// heals the network (cut false): Network.Partition with a group of this
// host alone, or Network.Heal. For a pipe it cuts or heals both directions,
// whichever end it is called on. Cutting drops the packets in flight between
// the host and the others, and while the cut lasts every packet written
// between them is dropped; each counts as Dropped in its sender's Stats.
// Packets that already reached a receive buffer stay there.
func (c *PacketConn) Partition(cut bool) {
	if !cut {
		c.n.Heal()
		return
	}
	c.n.mu.Lock()
	h := c.ap.Addr()
	c.n.mu.Unlock()
	c.n.Partition([]string{h.String()})
}

// Stats returns the counts for the packets this socket has sent.
func (c *PacketConn) Stats() LinkStats {
	c.n.mu.Lock()
	defer c.n.mu.Unlock()
	c.n.arriveAllLocked(time.Now())
	return c.stats
}

// Rebind moves the socket to a new address, as a NAT does when it drops a
// mapping and makes a new one: from now on its packets come from addr
// ("ip:port"; port 0 picks a free port on that host), packets sent to addr
// reach it, and packets to its previous address — those in flight included
// — are dropped. If addr's IP differs, the socket is on that host now: the
// host's links and partition group apply. LocalAddr still returns the
// address the socket was opened at, as a socket behind a NAT knows only its
// own side. Rebinding to the current address does nothing.
//
// Rebind fails, with a *net.OpError, when the PacketConn is closed
// (net.ErrClosed), addr is not an IP address and port, or another socket is
// at addr (an error matching syscall.EADDRINUSE).
func (c *PacketConn) Rebind(addr string) error {
	ap, err := parseAddrPort(addr)
	if err != nil {
		return c.opError("rebind", nil, err)
	}
	n := c.n
	n.mu.Lock()
	defer n.mu.Unlock()
	switch {
	case c.closed:
		return c.opError("rebind", net.UDPAddrFromAddrPort(ap), net.ErrClosed)
	case ap == c.ap:
		return nil
	}
	if ap, err = n.bindLocked(ap); err != nil {
		return c.opError("rebind", net.UDPAddrFromAddrPort(ap), err)
	}
	c.arrive(time.Now())
	c.wire.filter(func(*packet) bool { return false }, dropped)
	delete(n.socks, c.ap)
	c.setAddrLocked(ap)
	return nil
}

// WriteTo sends b to addr. It copies b, so the caller may reuse it at once.
// A packet to an address where no socket is open is dropped silently (and
// counted as Dropped), like a datagram to a host that does not exist.
// WriteTo returns len(b) and nil for every packet it accepts, whatever the
// network does with it; it fails only when the PacketConn is closed
// (net.ErrClosed), the write deadline has passed (os.ErrDeadlineExceeded) or
// addr is nil. Errors are *net.OpError values.
func (c *PacketConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	c.n.mu.Lock()
	defer c.n.mu.Unlock()
	switch now := time.Now(); {
	case c.closed:
		return 0, c.opError("write", addr, net.ErrClosed)
	case !c.writeDeadline.IsZero() && !now.Before(c.writeDeadline):
		return 0, c.opError("write", addr, os.ErrDeadlineExceeded)
	case addr == nil:
		return 0, c.opError("write", nil, errMissingAddress)
	default:
		c.stats.Sent++
		to, _ := destination(addr) // the zero address for one that names no socket
		c.n.sendLocked(c, b, to, now)
		return len(b), nil
	}
}

// arrive moves the packets that are due at now from the wire to the receive
// buffer, dropping those that do not fit. Doing it lazily, whenever anyone
// looks, gives the same result as doing it at each delivery time: the buffer
// only drains in ReadFrom, which calls arrive first. Called with n.mu held.
func (c *PacketConn) arrive(now time.Time) {
	for {
		pkt := c.wire.head()
		if pkt == nil || pkt.at.After(now) {
			return
		}
		c.wire.pop()
		if c.rx.bytes+len(pkt.data) > c.rxLimit {
			dropped(pkt)
			continue
		}
		c.rx.push(pkt)
		delivered(pkt)
	}
}

// wake wakes every reader waiting in ReadFrom. Called with n.mu held.
func (c *PacketConn) wake() {
	if c.waiting {
		c.changed.Set()
		c.waiting = false
	}
}

// ReadFrom reads the next packet into b and returns its length and the
// sender's address. A packet longer than b is truncated to len(b) and the rest
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
	c.n.mu.Lock()
	for {
		if c.closed {
			c.n.mu.Unlock()
			return 0, nil, c.opError("read", nil, net.ErrClosed)
		}
		now := time.Now()
		deadline := c.readDeadline
		if !deadline.IsZero() && !now.Before(deadline) {
			// before looking for packets, as a socket does: quic-go stops
			// its read loop by setting a deadline in the past
			c.n.mu.Unlock()
			return 0, nil, c.opError("read", nil, os.ErrDeadlineExceeded)
		}
		c.arrive(now)
		if c.rx.len() > 0 {
			pkt := c.rx.pop()
			c.n.mu.Unlock()
			return copy(b, pkt.data), pkt.from, nil
		}
		wakeAt := deadline
		if h := c.wire.head(); h != nil && (wakeAt.IsZero() || h.at.Before(wakeAt)) {
			wakeAt = h.at
		}
		if !c.waiting {
			c.changed, c.waiting = new(gate.Event), true
		}
		changed := c.changed.Done()
		c.n.mu.Unlock()

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
		c.n.mu.Lock()
	}
}

// Close closes the PacketConn: blocked and later ReadFrom and WriteTo calls
// fail with net.ErrClosed, unread packets are discarded, and packets still in
// flight to it are dropped (counted in their senders' Stats). Its address is
// free again: what is sent to it from now on is dropped, until another socket
// opens there. Closing twice returns net.ErrClosed.
func (c *PacketConn) Close() error {
	c.n.mu.Lock()
	defer c.n.mu.Unlock()
	if c.closed {
		return c.opError("close", nil, net.ErrClosed)
	}
	c.arrive(time.Now())
	c.closed = true
	close(c.done)
	c.rx.clear()
	c.wire.filter(func(*packet) bool { return false }, dropped)
	delete(c.n.socks, c.ap)
	c.waiting = false
	return nil
}

// LocalAddr returns the address the socket was opened at: 127.0.0.1:1 for
// the first end of NewPipe and 127.0.0.2:1 for the second, the address given
// to Network.ListenPacket (with the port it picked for port 0). Rebind does
// not change it.
func (c *PacketConn) LocalAddr() net.Addr { return c.local }

// SetDeadline sets the read and write deadlines, as SetReadDeadline and
// SetWriteDeadline do.
func (c *PacketConn) SetDeadline(t time.Time) error {
	c.n.mu.Lock()
	defer c.n.mu.Unlock()
	c.readDeadline, c.writeDeadline = t, t
	c.wake()
	return nil
}

// SetReadDeadline sets when blocked and future ReadFrom calls fail with
// os.ErrDeadlineExceeded; the zero time means no deadline. A new deadline
// applies to a ReadFrom that is already waiting.
func (c *PacketConn) SetReadDeadline(t time.Time) error {
	c.n.mu.Lock()
	defer c.n.mu.Unlock()
	c.readDeadline = t
	c.wake()
	return nil
}

// SetWriteDeadline sets when future WriteTo calls fail with
// os.ErrDeadlineExceeded; the zero time means no deadline. WriteTo never
// blocks, so the deadline only matters once it has passed.
func (c *PacketConn) SetWriteDeadline(t time.Time) error {
	c.n.mu.Lock()
	defer c.n.mu.Unlock()
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
	c.n.mu.Lock()
	defer c.n.mu.Unlock()
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
	return &net.OpError{Op: op, Net: "udp", Source: c.local, Addr: addr, Err: err}
}
