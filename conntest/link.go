package conntest

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// Link describes the impairments of one direction between two hosts: what
// happens to the packets the sockets of one host send to those of the other
// (for a pipe, what one end sends to the other). The zero Link is a
// perfect, instant link.
//
// Each packet goes through the link in this order: the MTU check, the
// bandwidth queue, loss, duplication, and finally the delay (Delay plus
// jitter, plus the reorder hold for a reordered packet). A packet that is
// not reordered never overtakes an earlier one (it waits behind it if its own
// delay would have it arrive first), so Jitter alone varies the delay without
// reordering; reordering is what Reorder is for.
type Link struct {
	// Loss is the probability, 0 to 1, that a packet is dropped on the wire.
	// A lost packet still used its share of the Bandwidth.
	Loss float64
	// Duplicate is the probability, 0 to 1, that a packet is delivered twice.
	// The copy has its own jitter.
	Duplicate float64
	// Reorder is the probability, 0 to 1, that a packet is held back for an
	// extra random time (see ReorderHoldMin), so that packets sent after it
	// overtake it.
	Reorder float64

	// Delay is the one-way latency added to every packet.
	Delay time.Duration
	// Jitter is the bound of a random extra latency, uniform in [0, Jitter),
	// drawn for every packet.
	Jitter time.Duration

	// MTU is the largest packet, in bytes, the link carries; larger packets
	// are dropped. 0 means no limit.
	MTU int
	// Bandwidth is the link rate in bytes per second; 0 means unlimited. The
	// link sends one packet at a time, like a real one: a packet departs at
	// max(now, previous departure) + size/Bandwidth. The packets waiting for
	// the link form a queue like a router's buffer: a packet that would wait
	// longer than MaxQueueDelay before its transmission starts is dropped.
	Bandwidth int64

	// Seed seeds the random decisions (loss, duplication, reordering,
	// jitter), so a direction with the same Link and the same sequence of
	// writes makes the same decisions every run. Every value, 0 included, is an
	// ordinary fixed seed: runs are deterministic unless the test varies the
	// seed itself. Each direction between two hosts (so each direction of a
	// pipe) draws from a stream of its own.
	Seed int64
}

// LinkStats counts what happened to a set of packets: those one PacketConn
// sent (PacketConn.Stats), those sent from one host to another
// (Network.LinkStats) or by one host (Network.HostStats). A duplicated
// packet counts once in Sent and once in Duplicated, and each of its copies
// is then either delivered or dropped, so once nothing is in flight
// Sent+Duplicated == Delivered+Dropped.
type LinkStats struct {
	// Sent counts the WriteTo calls that were accepted (WriteTo returned nil).
	Sent uint64
	// Delivered counts the packets that reached the destination's receive
	// buffer.
	Delivered uint64
	// Dropped counts the packets lost for any reason: Loss, MTU, a full
	// bandwidth queue, a full receive buffer, a partition, a destination
	// where no socket is open (or that closed or was rebound while the
	// packet was in flight), or more than 64 MiB already in flight to the
	// destination socket.
	Dropped uint64
	// Duplicated counts the extra copies made by Duplicate.
	Duplicated uint64
	// Reordered counts the packets held back by Reorder.
	Reordered uint64
}

const (
	// MaxQueueDelay bounds the bandwidth queue of a link with a Bandwidth: a
	// packet that would wait longer than this before the link starts to send
	// it is dropped, like a packet arriving at a full router buffer.
	MaxQueueDelay = time.Second

	// ReorderHoldMin is the least extra delay of a packet chosen by
	// Link.Reorder. The hold is uniform in
	// [ReorderHoldMin, ReorderHoldMin+Delay+Jitter+ReorderHoldExtra), so the
	// packets sent soon after it, even at the same instant, overtake it.
	ReorderHoldMin = time.Millisecond
	// ReorderHoldExtra widens the range of the reorder hold beyond the
	// link's own Delay+Jitter (see ReorderHoldMin).
	ReorderHoldExtra = 10 * time.Millisecond

	// DefaultReadBuffer is the size in bytes of a PacketConn's receive buffer
	// until SetReadBuffer changes it. Packets that arrive when it is full are
	// dropped, as a kernel drops datagrams on a full socket buffer.
	DefaultReadBuffer = 1 << 20

	// maxInFlight bounds the bytes on the wire to one socket (sent, not yet
	// due), so writers that outrun a long Delay cannot grow memory without
	// limit; excess packets are dropped.
	maxInFlight = 64 << 20
)

// validate panics on values that have no meaning. conntest is a test helper,
// and a wrong link (Loss: 5 meant as 5 %) is a bug in the test that a silent
// clamp would hide.
func (l Link) validate() {
	for _, p := range []struct {
		name string
		v    float64
	}{{"Loss", l.Loss}, {"Duplicate", l.Duplicate}, {"Reorder", l.Reorder}} {
		if math.IsNaN(p.v) || p.v < 0 || p.v > 1 {
			panic(fmt.Sprintf("conntest: Link.%s = %v, want a probability in [0, 1]", p.name, p.v))
		}
	}
	switch {
	case l.Delay < 0:
		panic(fmt.Sprintf("conntest: Link.Delay = %v, want >= 0", l.Delay))
	case l.Jitter < 0:
		panic(fmt.Sprintf("conntest: Link.Jitter = %v, want >= 0", l.Jitter))
	case l.MTU < 0:
		panic(fmt.Sprintf("conntest: Link.MTU = %d, want >= 0", l.MTU))
	case l.Bandwidth < 0:
		panic(fmt.Sprintf("conntest: Link.Bandwidth = %d, want >= 0", l.Bandwidth))
	}
}

// newRand returns the random source of one direction between two hosts.
// stream tells the directions apart, so a→b and b→a are independent but both
// fixed by Seed.
func newRand(seed int64, stream uint64) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(seed), 0x636f6e6e74657374^stream))
}

// decision is everything random about one packet. All of it is drawn for
// every packet, whatever the Link, so the loss pattern of a seed does not
// change when, say, Jitter is turned on.
type decision struct {
	lose, duplicate, reorder bool
	jitter, dupJitter, hold  time.Duration
}

func decide(r *rand.Rand, l *Link) decision {
	uLoss, uDup, uReorder := r.Float64(), r.Float64(), r.Float64()
	uJitter, uDupJitter, uHold := r.Float64(), r.Float64(), r.Float64()
	holdRange := l.Delay + l.Jitter + ReorderHoldExtra
	return decision{
		lose:      uLoss < l.Loss,
		duplicate: uDup < l.Duplicate,
		reorder:   uReorder < l.Reorder,
		jitter:    time.Duration(uJitter * float64(l.Jitter)),
		dupJitter: time.Duration(uDupJitter * float64(l.Jitter)),
		hold:      ReorderHoldMin + time.Duration(uHold*float64(holdRange)),
	}
}

// transmitTime is how long a packet of n bytes occupies a link of bw bytes/s.
func transmitTime(n int, bw int64) time.Duration {
	return time.Duration(int64(n) * int64(time.Second) / bw)
}
