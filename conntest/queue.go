package conntest

import (
	"container/heap"
	"net"
	"time"
)

// packet is one copy of a datagram on its way to a receiver.
type packet struct {
	data []byte
	at   time.Time    // when it reaches the receiver's buffer
	seq  uint64       // order of enqueueing: breaks ties in at, so equal times stay FIFO
	from *net.UDPAddr // the sender's address when it sent the packet: what ReadFrom reports
	src  *PacketConn  // the sender, whose Stats count what becomes of the packet
	dir  *direction   // the link it travels, whose stats count it too
}

// wire holds the packets in flight towards one receiver, ordered by delivery
// time. It is simnet's packet queue (testutils/simnet/queue.go) without its
// goroutine: nothing dequeues on a timer, the receiver takes what is due when
// it looks (see PacketConn.arrive).
type wire struct {
	h     packetHeap
	bytes int
	seq   uint64
}

func (w *wire) push(p *packet) {
	w.seq++
	p.seq = w.seq
	w.bytes += len(p.data)
	heap.Push(&w.h, p)
}

// head returns the next packet due, or nil.
func (w *wire) head() *packet {
	if len(w.h) == 0 {
		return nil
	}
	return w.h[0]
}

func (w *wire) pop() *packet {
	p := heap.Pop(&w.h).(*packet)
	w.bytes -= len(p.data)
	return p
}

// filter removes the packets for which keep is false, passing each to
// dropped.
func (w *wire) filter(keep func(*packet) bool, dropped func(*packet)) {
	kept := w.h[:0]
	for _, p := range w.h {
		if keep(p) {
			kept = append(kept, p)
		} else {
			w.bytes -= len(p.data)
			dropped(p)
		}
	}
	clear(w.h[len(kept):])
	w.h = kept
	heap.Init(&w.h)
}

type packetHeap []*packet

func (h packetHeap) Len() int { return len(h) }
func (h packetHeap) Less(i, j int) bool {
	if h[i].at.Equal(h[j].at) {
		return h[i].seq < h[j].seq
	}
	return h[i].at.Before(h[j].at)
}
func (h packetHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *packetHeap) Push(x any)   { *h = append(*h, x.(*packet)) }
func (h *packetHeap) Pop() any {
	old := *h
	p := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return p
}

// fifo is a receive buffer: the packets that arrived and wait for ReadFrom.
type fifo struct {
	q     []*packet
	head  int
	bytes int
}

func (f *fifo) len() int { return len(f.q) - f.head }

func (f *fifo) push(p *packet) {
	if f.head > 0 && f.head == len(f.q) {
		f.q, f.head = f.q[:0], 0 // empty: reuse the array from its start
	}
	f.q = append(f.q, p)
	f.bytes += len(p.data)
}

func (f *fifo) pop() *packet {
	p := f.q[f.head]
	f.q[f.head] = nil
	f.head++
	f.bytes -= len(p.data)
	if f.head > 64 && f.head*2 > len(f.q) {
		// compact, so a buffer that never quite drains does not keep
		// growing its array
		n := copy(f.q, f.q[f.head:])
		clear(f.q[n:])
		f.q, f.head = f.q[:n], 0
	}
	return p
}

// clear empties the buffer.
func (f *fifo) clear() {
	clear(f.q)
	f.q, f.head, f.bytes = f.q[:0], 0, 0
}
