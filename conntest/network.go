package conntest

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Network is an in-memory IP network: hosts named by their IP address, UDP
// sockets on them opened with ListenPacket, and a Link in each direction
// between every two hosts. A packet goes from its sender's host to the
// destination's host through the Link of that direction and lands in the
// destination socket's receive buffer; a packet to an address where no
// socket is open is dropped, as UDP drops a datagram to a closed port.
//
// Every direction between two hosts starts with the default Link given to
// NewNetwork; SetLink and SetOneWayLink override pairs of hosts. Packets
// between two sockets of one host take the loopback, a perfect Link that
// partitions never cut (SetLink with the same host twice changes it).
// Partition splits the hosts into groups that cannot reach each other, and
// Heal joins them again. LinkStats and HostStats count what happened to the
// packets; each PacketConn's Stats counts its own.
//
// A Network starts no goroutine and needs no Close: once its sockets are
// closed nothing of it is left running. Like NewPipe it works in real time
// and inside a testing/synctest bubble; create the Network and its sockets
// inside the bubble that uses them. The random decisions of each direction
// come from a source seeded by the direction's Link.Seed and the two host
// addresses, so a run with the same Links and the same writes in each
// direction makes the same decisions.
//
// Make a Network with NewNetwork; the zero Network is not usable. The
// methods of a Network are safe for concurrent use. One mutex guards the
// whole network, so a packet moves from sender to receiver under a single
// lock.
type Network struct {
	mu          sync.Mutex
	defaultLink Link
	hosts       map[netip.Addr]*host
	socks       map[netip.AddrPort]*PacketConn // open sockets by the address packets reach them at
	dirs        map[dirKey]*direction
	// groups is the partition: each named host's group, counted from 1.
	// Hosts not in the map are in group 0. nil when the network is whole.
	groups map[netip.Addr]int
}

// host is what the network knows about one IP address.
type host struct {
	// out, when set by PacketConn.SetLink, is the link from this host to
	// every other host; directions created later start with it too.
	out *Link
	// nextPort is where the search for a free port starts when a socket
	// asks for port 0.
	nextPort uint16
}

type dirKey struct{ from, to netip.Addr }

// direction is the link from one host to another, and the state of its
// sender side. Guarded by Network.mu.
type direction struct {
	from, to   netip.Addr
	link       Link
	rng        *rand.Rand
	stream     uint64
	lastDepart time.Time // when the link finishes sending its last queued packet
	lastArrive time.Time // delivery time of the last in-order packet
	stats      LinkStats
}

// The ports a socket opened on port 0 gets, as on Linux by default.
const (
	ephemeralFirst = 32768
	ephemeralLast  = 60999
)

// NewNetwork returns an empty network whose host pairs are joined by
// defaultLink until SetLink or SetOneWayLink says otherwise. Hosts come into
// being as sockets are opened on them (or as SetLink and Partition name
// them). NewNetwork panics if a field of defaultLink is out of range (see
// Link).
func NewNetwork(defaultLink Link) *Network {
	defaultLink.validate()
	return &Network{
		defaultLink: defaultLink,
		hosts:       make(map[netip.Addr]*host),
		socks:       make(map[netip.AddrPort]*PacketConn),
		dirs:        make(map[dirKey]*direction),
	}
}

// ListenPacket opens a UDP socket at addr, "ip:port" such as "10.0.0.7:4433"
// or "[fd00::7]:4433". The IP names the host the socket is on; port 0 picks
// a free port on that host (LocalAddr tells which). The host needs no
// declaring: it exists once a socket is on it.
//
// ListenPacket fails, with a *net.OpError as net.ListenPacket would return,
// when addr is not an IP address and port (host names are not resolved, and
// the unspecified address 0.0.0.0 names no host), and when a socket is
// already open at addr: that error matches syscall.EADDRINUSE, as the
// operating system's does.
func (n *Network) ListenPacket(addr string) (*PacketConn, error) {
	ap, err := parseAddrPort(addr)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: "udp", Err: err}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if ap, err = n.bindLocked(ap); err != nil {
		return nil, &net.OpError{Op: "listen", Net: "udp", Addr: net.UDPAddrFromAddrPort(ap), Err: err}
	}
	return n.openLocked(ap), nil
}

// openLocked opens a socket at ap, which bindLocked reserved.
func (n *Network) openLocked(ap netip.AddrPort) *PacketConn {
	c := &PacketConn{
		n:       n,
		local:   net.UDPAddrFromAddrPort(ap),
		done:    make(chan struct{}),
		rxLimit: DefaultReadBuffer,
	}
	c.setAddrLocked(ap)
	return c
}

// bindLocked reserves ap, picking a free port when ap's port is 0, and
// returns the address reserved. The caller registers the socket under it.
func (n *Network) bindLocked(ap netip.AddrPort) (netip.AddrPort, error) {
	if ap.Port() != 0 {
		if n.socks[ap] != nil {
			return ap, os.NewSyscallError("bind", syscall.EADDRINUSE)
		}
		return ap, nil
	}
	h := n.host(ap.Addr())
	if h.nextPort < ephemeralFirst || h.nextPort > ephemeralLast {
		h.nextPort = ephemeralFirst
	}
	for range ephemeralLast - ephemeralFirst + 1 {
		p := h.nextPort
		if h.nextPort++; h.nextPort > ephemeralLast {
			h.nextPort = ephemeralFirst
		}
		if cand := netip.AddrPortFrom(ap.Addr(), p); n.socks[cand] == nil {
			return cand, nil
		}
	}
	return ap, os.NewSyscallError("bind", syscall.EADDRINUSE) // every port is taken
}

// SetLink sets the Link of both directions between hostA and hostB, IP
// addresses such as "10.0.0.7", for the packets sent from now on; packets in
// flight keep their delivery times. As PacketConn.SetLink does, it restarts a
// direction's random source if l.Seed differs from the direction's current
// seed. SetLink(h, h, l) sets the loopback of host h.
//
// SetLink panics if a host is not an IP address or a field of l is out of
// range: both are bugs in the test.
func (n *Network) SetLink(hostA, hostB string, l Link) {
	l.validate()
	a, b := mustHost("SetLink", hostA), mustHost("SetLink", hostB)
	n.mu.Lock()
	defer n.mu.Unlock()
	n.dir(a, b).setLink(l)
	n.dir(b, a).setLink(l)
}

// SetOneWayLink sets the Link of the direction from one host to another
// only, for asymmetric paths such as a slow uplink; otherwise it is SetLink.
func (n *Network) SetOneWayLink(from, to string, l Link) {
	l.validate()
	a, b := mustHost("SetOneWayLink", from), mustHost("SetOneWayLink", to)
	n.mu.Lock()
	defer n.mu.Unlock()
	n.dir(a, b).setLink(l)
}

// Partition splits the network: hosts in different groups cannot reach each
// other, hosts in one group can. Every host not named in any group, hosts
// that have no socket yet included, is in one more group of its own, so
// Partition([]string{"10.0.0.1"}) cuts that host off from all the others,
// which still reach each other. A host always reaches itself.
//
// Partition replaces the previous partition, if any; with no groups it is
// Heal. The packets in flight between hosts that can no longer reach each
// other are dropped, and while the partition lasts so is every packet
// written between them; each counts as Dropped. Packets that already reached
// a receive buffer stay there.
//
// Partition panics if a host is not an IP address or is named in two
// groups: both are bugs in the test.
func (n *Network) Partition(groups ...[]string) {
	var g map[netip.Addr]int
	if len(groups) > 0 {
		g = make(map[netip.Addr]int)
		for i, group := range groups {
			for _, s := range group {
				a := mustHost("Partition", s)
				if j, dup := g[a]; dup {
					panic(fmt.Sprintf("conntest: Network.Partition: host %s is in groups %d and %d", a, j-1, i))
				}
				g[a] = i + 1
			}
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.groups = g
	if g == nil {
		return
	}
	now := time.Now()
	for _, s := range n.socks {
		s.arrive(now) // what is due has arrived and stays
		s.wire.filter(func(p *packet) bool { return n.reachable(p.dir.from, p.dir.to) }, dropped)
	}
	for _, d := range n.dirs {
		if !n.reachable(d.from, d.to) {
			// the cut empties the link's queue
			d.lastDepart, d.lastArrive = time.Time{}, time.Time{}
		}
	}
}

// Heal ends the partition: every host reaches every other again. Packets
// dropped by the partition stay dropped.
func (n *Network) Heal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.groups = nil
}

// LinkStats returns the counts for the packets sent from host from to host
// to (IP addresses), whichever sockets sent and received them. It panics if
// a host is not an IP address.
func (n *Network) LinkStats(from, to string) LinkStats {
	a, b := mustHost("LinkStats", from), mustHost("LinkStats", to)
	n.mu.Lock()
	defer n.mu.Unlock()
	n.arriveAllLocked(time.Now())
	if d := n.dirs[dirKey{a, b}]; d != nil {
		return d.stats
	}
	return LinkStats{}
}

// HostStats returns the counts for every packet the sockets of host (an IP
// address) sent, whatever its destination: the sum of the host's LinkStats
// towards every host, itself included, and of the packets to addresses that
// name no host. It panics if host is not an IP address.
func (n *Network) HostStats(host string) LinkStats {
	a := mustHost("HostStats", host)
	n.mu.Lock()
	defer n.mu.Unlock()
	n.arriveAllLocked(time.Now())
	var sum LinkStats
	for k, d := range n.dirs {
		if k.from == a {
			sum.Sent += d.stats.Sent
			sum.Delivered += d.stats.Delivered
			sum.Dropped += d.stats.Dropped
			sum.Duplicated += d.stats.Duplicated
			sum.Reordered += d.stats.Reordered
		}
	}
	return sum
}

// arriveAllLocked brings every receive buffer up to date, so that counts
// include the packets due by now.
func (n *Network) arriveAllLocked(now time.Time) {
	for _, s := range n.socks {
		s.arrive(now)
	}
}

func (n *Network) host(a netip.Addr) *host {
	h := n.hosts[a]
	if h == nil {
		h = &host{}
		n.hosts[a] = h
	}
	return h
}

// dir returns the direction from one host to another, creating it with the
// link it starts with: the loopback for a host to itself, else the link set
// by PacketConn.SetLink on the sending host, else the default.
func (n *Network) dir(from, to netip.Addr) *direction {
	k := dirKey{from, to}
	if d := n.dirs[k]; d != nil {
		return d
	}
	var l Link
	switch h := n.host(from); {
	case from == to:
	case h.out != nil:
		l = *h.out
	default:
		l = n.defaultLink
	}
	d := &direction{from: from, to: to, link: l, stream: streamOf(from, to)}
	d.rng = newRand(l.Seed, d.stream)
	n.dirs[k] = d
	return d
}

// reachable reports whether the partition lets packets go from one host to
// another.
func (n *Network) reachable(from, to netip.Addr) bool {
	return n.groups == nil || from == to || n.groups[from] == n.groups[to]
}

func (d *direction) setLink(l Link) {
	if l.Seed != d.link.Seed {
		d.rng = newRand(l.Seed, d.stream)
	}
	d.link = l
}

// streamOf tells the directions of a network apart, so that each draws its
// own random numbers, all fixed by Link.Seed.
func streamOf(from, to netip.Addr) uint64 {
	h := fnv.New64a()
	a, b := from.As16(), to.As16()
	h.Write(a[:])
	h.Write(b[:])
	return h.Sum64()
}

// sendLocked puts a copy of b on the way from c to the socket at to. Called
// with n.mu held.
func (n *Network) sendLocked(c *PacketConn, b []byte, to netip.AddrPort, now time.Time) {
	d := n.dir(c.ap.Addr(), to.Addr())
	d.stats.Sent++
	dec := decide(d.rng, &d.link)
	dst := n.socks[to]
	if dst == nil || !n.reachable(d.from, d.to) || (d.link.MTU > 0 && len(b) > d.link.MTU) {
		c.stats.Dropped++
		d.stats.Dropped++
		return
	}
	depart := now
	if bw := d.link.Bandwidth; bw > 0 {
		start := now
		if d.lastDepart.After(now) {
			start = d.lastDepart
		}
		if start.Sub(now) > MaxQueueDelay {
			c.stats.Dropped++ // the router buffer is full
			d.stats.Dropped++
			return
		}
		d.lastDepart = start.Add(transmitTime(len(b), bw))
		depart = d.lastDepart
	}
	if dec.lose {
		c.stats.Dropped++
		d.stats.Dropped++
		return
	}
	dst.arrive(now) // move what is due out of the way before adding more
	n.put(c, d, dst, b, depart.Add(d.link.Delay+dec.jitter), dec.reorder, dec.hold)
	if dec.duplicate {
		c.stats.Duplicated++
		d.stats.Duplicated++
		n.put(c, d, dst, b, depart.Add(d.link.Delay+dec.dupJitter), false, 0)
	}
}

// put schedules one copy of b to reach dst at at, or at hold after the last
// in-order packet of the direction if that is later. Called with n.mu held.
func (n *Network) put(c *PacketConn, d *direction, dst *PacketConn, b []byte, at time.Time, reorder bool, hold time.Duration) {
	w := &dst.wire
	if w.bytes+len(b) > maxInFlight {
		c.stats.Dropped++
		d.stats.Dropped++
		return
	}
	if at.Before(d.lastArrive) {
		at = d.lastArrive // in order: never overtake an earlier packet
	}
	if reorder {
		c.stats.Reordered++
		d.stats.Reordered++
		at = at.Add(hold) // and leave lastArrive, so later packets overtake it
	} else {
		d.lastArrive = at
	}
	pkt := &packet{data: append([]byte(nil), b...), at: at, from: c.from, src: c, dir: d}
	w.push(pkt)
	if w.head() == pkt {
		dst.wake() // a reader sleeping until the old head must look again
	}
}

// dropped counts a packet in flight that will not arrive. Called with n.mu
// held.
func dropped(p *packet) {
	p.src.stats.Dropped++
	p.dir.stats.Dropped++
}

// delivered counts a packet that reached its receive buffer. Called with
// n.mu held.
func delivered(p *packet) {
	p.src.stats.Delivered++
	p.dir.stats.Delivered++
}

// parseAddrPort parses "ip:port" without resolving names.
func parseAddrPort(s string) (netip.AddrPort, error) {
	h, p, err := net.SplitHostPort(s)
	if err != nil {
		return netip.AddrPort{}, &net.AddrError{Err: "want ip:port", Addr: s}
	}
	a, err := netip.ParseAddr(h)
	if err != nil || a.IsUnspecified() {
		return netip.AddrPort{}, &net.AddrError{Err: "want the IP address of a host, such as 10.0.0.7", Addr: s}
	}
	port, err := strconv.ParseUint(p, 10, 16)
	if err != nil {
		return netip.AddrPort{}, &net.AddrError{Err: "invalid port", Addr: s}
	}
	return netip.AddrPortFrom(a.Unmap(), uint16(port)), nil
}

// destination returns the address a packet to addr goes to. ok is false for
// an address that names no UDP socket at all.
func destination(addr net.Addr) (ap netip.AddrPort, ok bool) {
	if u, isUDP := addr.(*net.UDPAddr); isUDP {
		ap = u.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), ap.Addr().IsValid()
	}
	if addr.Network() != "udp" {
		return netip.AddrPort{}, false
	}
	ap, err := parseAddrPort(addr.String())
	return ap, err == nil
}

// mustHost parses a host's IP address for a method that cannot return an
// error.
func mustHost(method, s string) netip.Addr {
	a, err := netip.ParseAddr(s)
	if err != nil {
		panic(fmt.Sprintf("conntest: Network.%s: host %q is not an IP address", method, s))
	}
	return a.Unmap()
}
