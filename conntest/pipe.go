package conntest

import "net/netip"

// NewPipe returns the two ends of an in-memory UDP link, a at 127.0.0.1:1 and
// b at 127.0.0.2:1 (LocalAddr returns a *net.UDPAddr): the two sockets of a
// Network of two hosts of its own. Both directions start with the
// impairments of l; SetLink on an end changes the direction from it to the
// other, and Partition on either end cuts or heals both. The addresses are
// labels, not sockets: any number of pipes can exist at once, and a packet
// written on one pipe only ever reaches an end of that pipe.
//
// NewPipe starts no goroutine. To use the pipe inside a testing/synctest
// bubble, call NewPipe inside the bubble. NewPipe panics if a field of l is
// out of range (see Link).
func NewPipe(l Link) (a, b *PacketConn) {
	n := NewNetwork(l)
	n.mu.Lock()
	defer n.mu.Unlock()
	a = n.openLocked(netip.MustParseAddrPort("127.0.0.1:1"))
	b = n.openLocked(netip.MustParseAddrPort("127.0.0.2:1"))
	return a, b
}
