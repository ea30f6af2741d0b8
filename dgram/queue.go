package dgram

import (
	"context"
	"sync/atomic"
	"time"

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
// A Queue can also be fed by a Source (ReceiveFrom). A Get that finds the
// queue empty then receives from the source itself, so that a datagram goes
// from the source to the application without a hand-off between goroutines,
// and the queue holds datagrams only for an application that does not keep
// up: once no Get has been receiving for a moment (takeoverDelay), a
// goroutine of the queue drains the source into it, with the bound and the
// counts above, until a Get finds the queue empty again.
//
// Make a Queue with NewQueue; the zero Queue is not usable.
type Queue struct {
	// gate is set when Get can go on without waiting: the queue holds a
	// datagram, is closed, or may be received from its source directly
	// (ready). It guards every field below.
	gate  gate.Gate
	limit int
	// ring holds the n queued datagrams from ring[head] onward, wrapping
	// around at len(ring). len(ring) <= limit.
	ring    [][]byte
	head, n int
	err     error // the close error; nil while open
	stats   Stats // Queued is n, filled in by Stats

	// The source, set once by ReceiveFrom. At any moment either Gets
	// receive from it directly or the drainer does, never both, so that
	// the order of the datagrams is kept: the queue holds datagrams only
	// while no Get receives.
	src Source
	// srcDone is set once the source has failed (it is closed): nothing is
	// received from it any more, and Gets wait for Close.
	srcDone bool
	// waiting is the number of Gets waiting for the gate: for the drainer
	// to stop, for a datagram or for Close.
	waiting int
	// stopDrainer is set while the drainer goroutine receives from the
	// source into the ring; calling it makes the drainer stop.
	stopDrainer context.CancelFunc
	// done holds the channels given to ReceiveFrom, to close once the
	// queue is closed and none of its goroutines runs or will run.
	done []chan<- struct{}

	// A Get receives from the source without the gate, so that a datagram
	// costs it a few atomic operations. fast is set, under the gate, when
	// it may (the ring is empty, the queue and the source are open, and no
	// drainer runs); direct counts the Gets that do. A Get announces itself
	// in direct before it checks fast, and the drainer is started only
	// after fast was cleared and direct seen to be 0, so that never both
	// receive.
	fast   atomic.Bool
	direct atomic.Int64
	// received counts the datagrams such Gets returned: Stats.Received is
	// stats.Received plus received.
	received atomic.Uint64
	// closed is set by Close, for the Gets that do not hold the gate.
	closed atomic.Bool
	// takeover is the timer, made at the first use, that starts the
	// drainer once no Get has been receiving for takeoverDelay; armed
	// while it is set to run.
	takeover atomic.Pointer[time.Timer]
	armed    atomic.Bool
}

// A Source delivers received datagrams one at a time; quic-go's *quic.Conn
// is one. ReceiveDatagram waits for a datagram, returns context.Cause(ctx)
// when ctx ends first, and any other error once the source is closed, after
// which it delivers nothing more. It must be safe for concurrent use.
type Source interface {
	ReceiveDatagram(ctx context.Context) ([]byte, error)
}

// takeoverDelay is how long a Queue lets its source hold the datagrams that
// arrive while no Get receives, before its own goroutine drains them into the
// queue, where they are bounded and counted. An application that keeps up is
// back in Get within microseconds, and pays neither the drainer's goroutine
// nor its hand-off per datagram. quic-go holds up to 128 unread datagrams
// per connection and drops newer ones silently: a millisecond is that many
// at 128,000 datagrams a second, more than one connection receives.
const takeoverDelay = time.Millisecond

// Stats counts what happened to the datagrams given to a Queue. At any
// moment,
//
//	Received = (datagrams returned by Get) + Dropped + Discarded + Queued
type Stats struct {
	// Received is the number of datagrams Put or received from the source
	// before Close, whatever became of them. Datagrams that arrive after
	// Close are not counted anywhere.
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
	q.putLocked(b)
}

// putLocked is Put with the gate held.
func (q *Queue) putLocked(b []byte) {
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

// Get removes and returns the oldest queued datagram, as it was given to Put
// or received from the source. If the queue is empty, Get waits until a
// datagram arrives, the queue is closed, or ctx ends; with a source, it
// receives the next datagram from the source itself. It returns the close
// error once the queue is closed, and context.Cause(ctx) if ctx ends first;
// a Get that gives up leaves no goroutine, timer or claim on the queue
// behind (with a source, the queue's drainer takes over once nobody
// receives, as after any Get). When a datagram is queued Get returns it even
// if ctx has already ended, and it neither allocates nor starts a goroutine
// or timer; a datagram the source holds is not queued yet.
func (q *Queue) Get(ctx context.Context) ([]byte, error) {
	if q.fast.Load() {
		if b, err, ok := q.receive(ctx); ok {
			return b, err
		}
	}
	return q.get(ctx)
}

// get is Get through the gate. It is out of line, so that a Get that
// receives directly, often the first call of a goroutine of its own, takes
// little stack on its way to the source.
//
//go:noinline
func (q *Queue) get(ctx context.Context) ([]byte, error) {
	q.gate.Lock()
	for {
		switch {
		case q.n > 0:
			b := q.ring[q.head]
			q.ring[q.head] = nil
			q.head = q.wrap(q.head + 1)
			q.n--
			q.unlock()
			return b, nil
		case q.err != nil:
			err := q.err
			q.unlock()
			return nil, err
		case ctx.Err() != nil:
			q.unlock()
			return nil, context.Cause(ctx)
		case q.directOK():
			q.unlock()
			if b, err, ok := q.receive(ctx); ok {
				return b, err
			}
			q.gate.Lock()
			continue
		}
		if q.stopDrainer != nil {
			// Take over from the drainer: it stops, and the gate opens
			// for direct receiving once it has.
			q.stopDrainer()
		}
		q.waiting++
		q.unlock()
		if _, err := q.gate.WaitAndLock(ctx); err != nil {
			q.gate.Lock()
			q.waiting--
			q.idle()
			q.unlock()
			return nil, err
		}
		q.waiting--
	}
}

// directOK reports whether Gets may receive from the source themselves:
// there is one, it is open, and the drainer is not receiving from it. The
// gate must be held.
func (q *Queue) directOK() bool {
	return q.src != nil && !q.srcDone && q.stopDrainer == nil
}

// receive is a Get receiving from the source directly, without the gate.
// It reports false, having taken nothing, when the Get must go the way
// through the gate instead: its context has ended, the drainer runs, or
// the source turned out to be closed.
func (q *Queue) receive(ctx context.Context) (b []byte, err error, ok bool) {
	if ctx.Err() != nil {
		return nil, nil, false
	}
	q.direct.Add(1)
	if !q.fast.Load() {
		q.leave()
		return nil, nil, false
	}
	b, err = q.src.ReceiveDatagram(ctx)
	if err == nil && q.fast.Load() {
		q.received.Add(1)
		q.leave()
		return b, nil, true
	}
	return q.receiveEnd(ctx, b, err)
}

// receiveEnd is receive's end when the datagram did not simply arrive: it
// is out of line for the reason get is.
//
//go:noinline
func (q *Queue) receiveEnd(ctx context.Context, b []byte, err error) ([]byte, error, bool) {
	if err != nil && ctx.Err() != nil {
		q.leave()
		return nil, context.Cause(ctx), true
	}
	// Closed meanwhile, the source failed, or fast is clear for a moment
	// while the takeover timer sees this Get: the gate tells.
	q.gate.Lock()
	defer q.unlock()
	q.direct.Add(-1)
	defer q.idle()
	switch {
	case q.err != nil:
		// A datagram that arrives after Close is not counted, as with
		// Put.
		return nil, q.err, true
	case err == nil:
		q.received.Add(1)
		return b, nil, true
	}
	q.srcDone = true
	return nil, nil, false
}

// leave ends a Get's direct receiving and arms the takeover timer when it
// was the last.
func (q *Queue) leave() {
	if q.direct.Add(-1) == 0 && !q.armed.Load() {
		q.arm()
	}
}

// arm sets the takeover timer, unless it is set already or the queue is
// closed, without the gate.
func (q *Queue) arm() {
	t := q.takeover.Load()
	if t == nil {
		q.gate.Lock()
		q.idle() // makes the timer
		q.unlock()
		return
	}
	if !q.armed.CompareAndSwap(false, true) {
		return
	}
	if q.closed.Load() {
		// Close may have seen the timer armed and be counting on it to
		// finish.
		q.armed.Store(false)
		q.gate.Lock()
		q.finished()
		q.unlock()
		return
	}
	t.Reset(takeoverDelay)
}

// idle arms the takeover timer when nobody receives from the source: no Get
// and no drainer. The gate must be held.
func (q *Queue) idle() {
	if !q.directOK() || q.err != nil || q.direct.Load() > 0 || q.waiting > 0 || q.armed.Load() {
		return
	}
	q.armed.Store(true)
	if t := q.takeover.Load(); t != nil {
		t.Reset(takeoverDelay)
	} else {
		q.takeover.Store(time.AfterFunc(takeoverDelay, q.takeOver))
	}
}

// takeOver runs when the takeover timer fires: if no Get receives from the
// source now, it becomes the drainer.
func (q *Queue) takeOver() {
	q.gate.Lock()
	q.armed.Store(false)
	if q.err != nil || !q.directOK() || q.waiting > 0 {
		q.finished()
		q.unlock()
		return
	}
	q.fast.Store(false)
	if q.direct.Load() > 0 {
		q.unlock() // sets fast again; the last Get to leave arms the timer
		return
	}
	ctx := q.startDrainer()
	q.unlock()
	q.drain(ctx)
}

// startDrainer marks the drainer as running and returns its context. The
// gate must be held.
func (q *Queue) startDrainer() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	q.stopDrainer = cancel
	return ctx
}

// drain is the drainer: it moves datagrams from the source into the ring
// until a Get takes over, the queue is closed, or the source is.
func (q *Queue) drain(ctx context.Context) {
	for {
		b, err := q.src.ReceiveDatagram(ctx)
		q.gate.Lock()
		if err != nil || q.err != nil {
			if err != nil && ctx.Err() == nil {
				q.srcDone = true
			}
			q.stopDrainer()
			q.stopDrainer = nil
			// Stopped for a Get that has given up since: nobody receives.
			q.idle()
			q.finished()
			q.unlock()
			return
		}
		q.putLocked(b)
		q.unlock()
	}
}

// ReceiveFrom makes src the queue's source (see Queue). Gets receive from
// it from now on; the queue's drainer starts only once none has received
// for takeoverDelay, as after any Get, so that a connection whose
// application reads at once, or that closes within that delay, never pays
// for the drainer's goroutine. done, if not nil, is closed once the queue is
// closed and its goroutines and timer have finished; Close stops them. Only
// the first source is used, and on a closed queue ReceiveFrom starts
// nothing.
func (q *Queue) ReceiveFrom(src Source, done chan<- struct{}) {
	q.gate.Lock()
	defer q.unlock()
	if done != nil {
		q.done = append(q.done, done)
	}
	if q.src == nil && q.err == nil {
		q.src = src
		q.idle()
	}
	q.finished()
}

// finished closes the done channels once the queue is closed and nothing of
// it runs: no drainer, and no takeover timer that could start one. The gate
// must be held.
func (q *Queue) finished() {
	if q.err == nil || q.stopDrainer != nil || q.armed.Load() {
		return
	}
	for _, done := range q.done {
		close(done)
	}
	q.done = nil
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
	q.closed.Store(true)
	q.stats.Discarded += uint64(q.n)
	q.ring, q.head, q.n = nil, 0, 0
	if q.stopDrainer != nil {
		q.stopDrainer() // it exits and calls finished
	}
	if q.armed.Load() && q.takeover.Load().Stop() {
		q.armed.Store(false)
	}
	q.finished()
}

// Stats returns the queue's counts.
func (q *Queue) Stats() Stats {
	q.gate.Lock()
	defer q.unlock()
	s := q.stats
	s.Received += q.received.Load()
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
	direct := q.directOK()
	q.fast.Store(direct && q.n == 0 && q.err == nil)
	q.gate.Unlock(q.n > 0 || q.err != nil || direct)
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
