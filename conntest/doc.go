// Package conntest provides in-memory UDP networks with impairments, for
// tests that run QUIC connections (quicconn's or raw quic-go's) without
// sockets: from a pipe between two endpoints to a mesh of a hundred nodes.
//
// A Network has hosts named by IP address and UDP sockets on them, opened
// with ListenPacket; each is a net.PacketConn. What a socket writes goes
// through the Link of the direction between the two hosts — loss,
// duplication, reordering, delay, jitter, an MTU and a bandwidth cap with a
// bounded queue, all decided by a seeded random source so a run can be
// repeated — and lands in the destination socket's bounded receive buffer.
// SetLink changes the link between two hosts, Partition splits the hosts
// into groups that cannot reach each other and Heal joins them, Rebind moves
// a socket to a new address as a NAT rebinding does, and LinkStats,
// HostStats and PacketConn.Stats count what happened to each packet.
//
// NewMesh builds a full mesh of quicconn nodes on a Network: each node with
// its Registration, credential, socket and Listener, and a Connected,
// mutually pinned connection to every other node. A test of three nodes
// that partitions one away:
//
//	n := conntest.NewNetwork(conntest.Link{Delay: 20 * time.Millisecond, Loss: 0.01})
//	m := conntest.NewMesh(t, n, 3)
//	s, _ := m.Node(0).Conn(1).OpenSendStream(ctx) // node 0 → node 1
//	n.Partition(m.Hosts(0, 2), m.Hosts(2, 3))     // nodes 0 and 1 | node 2
//	// ... once the connections to node 2 have timed out:
//	n.Heal()
//	m.Remesh(ctx)
//
// NewPipe is the smallest network, two sockets joined by one link, and
// NewPair a client and a server connected over one. Give network sockets to
// quic-go directly:
//
//	a, b := conntest.NewPipe(conntest.Link{Loss: 0.05, Delay: 10 * time.Millisecond})
//	ln, _ := quic.Listen(b, serverTLS, nil)
//	conn, _ := quic.Dial(ctx, a, b.LocalAddr(), clientTLS, nil)
//
// or to quicconn with conn.WithPacketConn.
//
// # Real time and synctest
//
// A network starts no goroutine and uses no background timer. Each packet
// gets a delivery time when it is written; a reader takes the packets that
// are due and otherwise sleeps on a timer until the next delivery time (or
// on a channel that a sooner packet, a new deadline or Close closes). The
// timer and the channel belong to the goroutine that waits, so the same code
// runs in real time and inside a testing/synctest bubble, where the bubble's
// fake clock jumps straight to the next delivery: a 10 ms delay measures
// exactly 10 ms, a transfer that takes 40 s on the fake clock (16 MiB
// through quic-go at 5 % loss and 10 ms delay) takes about a second of CPU
// work, and an idle timeout costs no wall time. Create the network inside
// the bubble that uses it: its channels and the timers of its readers must
// belong to that bubble. Once its sockets are closed nothing of it is left
// running.
//
// The package's own tests include a mesh simulation: 100 nodes (4,950
// connections) over links of 10 to 150 ms with 0.5 % loss, broadcasting on
// message streams, partitioned 67 + 33 for twice the idle timeout, healed
// and re-meshed, in under a minute of fake time and about half a minute of
// CPU (go test ./conntest -run MeshSimulation -soak -v).
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
// Simnet.Close (conntest has nothing to close but the sockets), its read
// deadline error is its own value rather than os.ErrDeadlineExceeded, its
// blocking endpoints apply back-pressure instead of dropping, and it models
// only latency and MTU (with a silent 1400-byte default). What conntest adds
// is loss, duplication, reordering, jitter, bandwidth with a bounded queue,
// partitions between groups of hosts, NAT rebinding, a bounded receive
// buffer, statistics and deterministic randomness, on a delivery queue that
// needs no goroutine.
package conntest
