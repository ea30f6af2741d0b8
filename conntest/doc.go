// Package conntest provides in-memory UDP links with impairments, for tests
// that run QUIC connections (quicconn's or raw quic-go's) without sockets.
//
// NewPipe returns two net.PacketConns joined in memory. What one end writes
// to the other's address goes through a Link — loss, duplication,
// reordering, delay, jitter, an MTU and a bandwidth cap with a bounded queue,
// all decided by a seeded random source so a run can be repeated — and lands
// in the other end's bounded receive buffer. Partition cuts and heals the
// pipe, SetLink changes a direction's impairments while it runs, and Stats
// counts what happened to each packet. Give the ends to quic-go directly:
//
//	a, b := conntest.NewPipe(conntest.Link{Loss: 0.05, Delay: 10 * time.Millisecond})
//	ln, _ := quic.Listen(b, serverTLS, nil)
//	conn, _ := quic.Dial(ctx, a, b.LocalAddr(), clientTLS, nil)
//
// # Real time and synctest
//
// A pipe starts no goroutine and uses no background timer. Each packet gets a
// delivery time when it is written; a reader takes the packets that are due
// and otherwise sleeps on a timer until the next delivery time (or on a
// channel that a sooner packet, a new deadline or Close closes). The timer
// and the channel belong to the goroutine that waits, so the same code runs
// in real time and inside a testing/synctest bubble, where the bubble's fake
// clock jumps straight to the next delivery: a 10 ms delay measures exactly
// 10 ms, and a transfer that takes 40 s on the fake clock (16 MiB through
// quic-go at 5 % loss and 10 ms delay) takes about a second of CPU work.
// Create the pipe inside the bubble that uses it: its channels and the timers
// of its readers must belong to that bubble. Once both ends are closed
// nothing of the pipe is left running.
//
// # Relation to simnet
//
// quic-go ships an in-process network, github.com/quic-go/quic-go/testutils/simnet,
// and its own tests run it under synctest. conntest keeps simnet's model —
// drop-in net.PacketConns and a priority queue of packets ordered by delivery
// time, ties broken by send order — and the trick of implementing
// SetReadBuffer and SetWriteBuffer so that quic-go does not warn about buffer
// sizes. It does not import simnet, because simnet's pieces do not fit the
// contract here: its links run two goroutines each until a separate
// Simnet.Close (conntest has nothing to close but the two ends), its read
// deadline error is its own value rather than os.ErrDeadlineExceeded, its
// blocking endpoints apply back-pressure instead of dropping, and it models
// only latency and MTU (with a silent 1400-byte default). What conntest adds
// is loss, duplication, reordering, jitter, bandwidth with a bounded queue,
// partitions, a bounded receive buffer, statistics and deterministic
// randomness, on a delivery queue that needs no goroutine.
package conntest
