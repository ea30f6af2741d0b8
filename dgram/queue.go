package dgram

import (
	"context"

	qerr "github.com/quicconn/quicconn/errors"
	"github.com/quicconn/quicconn/internal/gate"
)

// defaultLimit is the bound NewQueue uses for a limit <= 0, the default of
// conn.Settings.DatagramQueueLen.
const defaultLimit = 128

// minRing is the number of slots the ring starts with at the first Put. The
// ring grows by doubling up to the queue's limit, so an idle connection pays
// for no slots and a quiet one for few.
const minRing = 8

// Queue is a bounded FIFO of received datagrams. When full, Put drops the
// oldest datagram and counts it.
//
// Put never waits for a reader, and Get waits for a datagram, for Close, or
// for its context to end, whichever comes first. Any number of goroutines may
// call Put and Get at once; each datagram is returned by at most one Get.
// Once its ring has grown to the queue's high-water mark, Put and Get do not
// allocate.
//
// Make a Queue with NewQueue; the zero Queue is not usable.
type Queue struct {
	// gate is set when the queue holds a datagram or is closed, which is
	// exactly when Get can return without waiting. It guards every field
	// below.
	gate  gate.Gate
	limit int
	// ring holds the n queued datagrams from ring[head] onward, wrapping
	// around at len(ring). len(ring) <= limit.
	ring    [][]byte
	head, n int
	err     error // the close error; nil while open
	stats   Stats // Queued is n, filled in by Stats
}

// Stats counts what happened to the datagrams given to a Queue. At any
// moment,
//
//	Received = (datagrams returned by Get) + Dropped + Discarded + Queued
type Stats struct {
	// Received is the number of datagrams Put before Close, whatever became
	// of them. Datagrams Put after Close are not counted anywhere.
	Received uint64
	// Dropped is the number of datagrams evicted unread because the queue
	// was full when a newer one arrived.
	Dropped uint64
	// Discarded is the number of datagrams still queued when Close ran,
	// thrown away unread.
	Discarded uint64
	// Queued is the number of datagrams held now, waiting for Get; it is
	// what Len returns.
	Queued uint64
}

// NewQueue returns an empty, open Queue that holds at most limit datagrams.
// A limit <= 0 means 128.
func NewQueue(limit int) *Queue {
	if limit <= 0 {
		limit = defaultLimit
	}
	return &Queue{gate: gate.New(false), limit: limit}
}

// Put adds b to the back of the queue, evicting the oldest datagram and
// counting it in Stats.Dropped if the queue is full. Put never waits for a
// Get. The queue takes ownership of b: it is not copied, and the caller must
// not modify it afterwards. After Close, Put drops b without counting it,
// because the connection it arrived on is gone.
func (q *Queue) Put(b []byte) {
	q.gate.Lock()
	defer q.unlock()
	if q.err != nil {
		return
	}
	q.stats.Received++
	switch {
	case q.n == q.limit:
		q.ring[q.head] = nil
		q.head = q.wrap(q.head + 1)
		q.n--
		q.stats.Dropped++
	case q.n == len(q.ring):
		q.grow()
	}
	q.ring[q.wrap(q.head+q.n)] = b
	q.n++
}

// Get removes and returns the oldest queued datagram, as it was given to Put.
// If the queue is empty, Get waits until a datagram arrives, the queue is
// closed, or ctx ends. It returns the close error once the queue is closed,
// and context.Cause(ctx) if ctx ends first; a Get that gives up leaves no
// goroutine, timer or claim on the queue behind. When a datagram is queued
// Get returns it even if ctx has already ended, and it neither allocates nor
// starts a goroutine or timer.
func (q *Queue) Get(ctx context.Context) ([]byte, error) {
	if _, err := q.gate.WaitAndLock(ctx); err != nil {
		return nil, err
	}
	defer q.unlock()
	if q.err != nil {
		return nil, q.err
	}
	b := q.ring[q.head]
	q.ring[q.head] = nil
	q.head = q.wrap(q.head + 1)
	q.n--
	return b, nil
}

// Close closes the queue with err: it discards the queued datagrams, counting
// them in Stats.Discarded, releases the ring, and makes every waiting and
// future Get return err. A nil err means qerr.ErrConnectionLost. Only the
// first Close has an effect.
func (q *Queue) Close(err error) {
	q.gate.Lock()
	defer q.unlock()
	if q.err != nil {
		return
	}
	if err == nil {
		err = qerr.ErrConnectionLost
	}
	q.err = err
	q.stats.Discarded += uint64(q.n)
	q.ring, q.head, q.n = nil, 0, 0
}

// Stats returns the queue's counts.
func (q *Queue) Stats() Stats {
	q.gate.Lock()
	defer q.unlock()
	s := q.stats
	s.Queued = uint64(q.n)
	return s
}

// Len returns the number of datagrams queued.
func (q *Queue) Len() int {
	q.gate.Lock()
	defer q.unlock()
	return q.n
}

// unlock releases the gate with the condition Get waits for.
func (q *Queue) unlock() {
	q.gate.Unlock(q.n > 0 || q.err != nil)
}

// wrap maps i in [0, 2*len(q.ring)) to a ring index.
func (q *Queue) wrap(i int) int {
	if i >= len(q.ring) {
		i -= len(q.ring)
	}
	return i
}

// grow doubles the ring, up to the limit, keeping the queued datagrams in
// order at its start. The caller ensures len(q.ring) < q.limit.
func (q *Queue) grow() {
	size := min(max(2*len(q.ring), minRing), q.limit)
	ring := make([][]byte, size)
	n := copy(ring, q.ring[q.head:])
	copy(ring[n:], q.ring[:q.head])
	q.ring, q.head = ring, 0
}
