package conntest

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/quicconn/quicconn/certverify"
	"github.com/quicconn/quicconn/conn"
)

// MeshPort is the UDP port every node of a Mesh listens on.
const MeshPort = 4433

// meshParallel bounds the handshakes a Mesh runs at once, so that a large
// mesh built in real time does not starve its own handshakes of CPU past
// their timeout. In a synctest bubble it only spaces them out in fake time.
const meshParallel = 64

// Mesh is a full mesh of quicconn nodes on a Network, for tests of protocols
// between many peers: every node has its own Registration, credential,
// socket and Listener, and one Connected connection to every other node,
// each side's certificate verified by the other. NewMesh builds it; the
// test's cleanup closes it.
//
// Node i is the host 10.0.0.0 plus i+1 — 10.0.0.1, 10.0.0.2, …, 10.0.1.0 for
// the 256th — listening on MeshPort; Hosts gives the addresses for
// Network.SetLink and Network.Partition. Between nodes i < j, node i is the
// client: Node(i).Conn(j) is a client connection and Node(j).Conn(i) the
// server side of it.
//
// The methods of a Mesh and its Nodes are safe for concurrent use.
type Mesh struct {
	net   *Network
	cfg   *conn.Configuration
	nodes []*Node
	index map[certverify.CertHash]int // node index by certificate hash
}

// Node is one peer of a Mesh. Its fields are set by NewMesh and must not be
// changed.
type Node struct {
	// Index is the node's position in the mesh, from 0.
	Index int
	// Host is the node's IP address, such as "10.0.0.1".
	Host string
	// PacketConn is the node's socket, at Host:MeshPort. Its listener and
	// all its connections share it.
	PacketConn *PacketConn
	// Registration owns the node's listener and connections.
	Registration *conn.Registration
	// Credential is the node's identity and trust.
	Credential *certverify.Credential
	// Listener accepts the connections of nodes with a lower Index. The
	// mesh accepts on it only inside NewMesh and Remesh; at other times the
	// test may accept connections of its own on it.
	Listener *conn.Listener

	mu    sync.Mutex
	conns []*conn.Connection // by peer index; nil for the node itself
}

// NewMesh builds a full mesh of nodes quicconn nodes on n: nodes(nodes-1)/2
// connections, all Connected when it returns. Each node gets a fresh
// self-signed credential that pins every other node's certificate, unless
// WithNodeCredentials gives the credentials. WithSettings and WithALPN apply
// to every node; WithLink and WithCredentials do not apply (the links are
// n's) and fail the test.
//
// When the test ends, every node's Registration is closed and its socket
// after it; the test fails if a Registration does not become idle. NewMesh
// fails the test if a socket cannot be opened (an address of the mesh is
// taken on n) or a connection cannot be made within its handshake timeout.
// Inside a synctest bubble, create n and the mesh inside the bubble.
func NewMesh(t testing.TB, n *Network, nodes int, opts ...PairOption) *Mesh {
	t.Helper()
	o := newPairOptions(opts)
	switch {
	case o.linkSet:
		t.Fatalf("conntest.NewMesh: WithLink is for NewPair; set the Network's links instead")
	case o.pairCreds:
		t.Fatalf("conntest.NewMesh: WithCredentials is for NewPair; use WithNodeCredentials")
	case nodes < 1 || nodes > 1<<16-2:
		t.Fatalf("conntest.NewMesh: %d nodes, want 1 to %d", nodes, 1<<16-2)
	case o.meshCrd && len(o.nodeCreds) != nodes:
		t.Fatalf("conntest.NewMesh: %d credentials for %d nodes", len(o.nodeCreds), nodes)
	}
	cfg, err := conn.NewConfiguration(o.alpn, o.settings)
	if err != nil {
		t.Fatalf("conntest.NewMesh: %v", err)
	}
	m := &Mesh{net: n, cfg: cfg, nodes: make([]*Node, nodes), index: make(map[certverify.CertHash]int, nodes)}
	creds := o.nodeCreds
	if !o.meshCrd {
		creds = make([]*certverify.Credential, nodes)
	}
	for i := range nodes {
		if creds[i] == nil {
			if o.meshCrd {
				t.Fatalf("conntest.NewMesh: WithNodeCredentials: credential %d is nil", i)
			}
			if creds[i], err = certverify.GenerateSelfSigned([]string{fmt.Sprintf("node%d.conntest", i)}, nil); err != nil {
				t.Fatalf("conntest.NewMesh: %v", err)
			}
		}
		if len(creds[i].Certificate.Certificate) == 0 {
			t.Fatalf("conntest.NewMesh: credential %d has no certificate", i)
		}
		h := certverify.HashOf(creds[i].Certificate.Certificate[0])
		if j, dup := m.index[h]; dup {
			t.Fatalf("conntest.NewMesh: nodes %d and %d have the same certificate", j, i)
		}
		m.index[h] = i
	}
	if !o.meshCrd {
		hashes := make([]certverify.CertHash, 0, nodes)
		for h := range m.index {
			hashes = append(hashes, h)
		}
		for _, c := range creds {
			// Its own hash too: one call, and a node never dials itself.
			c.TrustHashes(hashes...)
		}
	}

	t.Cleanup(m.close(t))
	for i := range nodes {
		nd := &Node{
			Index:        i,
			Host:         meshHost(i).String(),
			Registration: conn.NewRegistration(fmt.Sprintf("%s/node%d", t.Name(), i)),
			Credential:   creds[i],
			conns:        make([]*conn.Connection, nodes),
		}
		m.nodes[i] = nd // before anything can fail, so that the cleanup sees it
		if nd.PacketConn, err = n.ListenPacket(netip.AddrPortFrom(meshHost(i), MeshPort).String()); err != nil {
			t.Fatalf("conntest.NewMesh: node %d: %v", i, err)
		}
		if nd.Listener, err = conn.Listen(nd.Registration, "", cfg, nd.Credential, conn.WithPacketConn(nd.PacketConn)); err != nil {
			t.Fatalf("conntest.NewMesh: node %d: %v", i, err)
		}
	}
	var pairs [][2]int
	for i := range nodes {
		for j := i + 1; j < nodes; j++ {
			pairs = append(pairs, [2]int{i, j})
		}
	}
	if err := m.connect(context.Background(), pairs); err != nil {
		t.Fatalf("conntest.NewMesh: %v", err)
	}
	return m
}

// meshHost is the address of node i.
func meshHost(i int) netip.Addr {
	v := i + 1
	return netip.AddrFrom4([4]byte{10, byte(v >> 16), byte(v >> 8), byte(v)})
}

// close returns the cleanup of the mesh: every Registration closed at once,
// each checked idle, then the sockets.
func (m *Mesh) close(t testing.TB) func() {
	return func() {
		var wg sync.WaitGroup
		errs := make([]error, len(m.nodes))
		for i, nd := range m.nodes {
			if nd == nil {
				continue
			}
			wg.Go(func() {
				nd.Registration.Close()
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				errs[i] = nd.Registration.WaitIdle(ctx)
			})
		}
		wg.Wait()
		for i, nd := range m.nodes {
			if nd == nil {
				continue
			}
			if errs[i] != nil {
				t.Errorf("conntest.NewMesh: node %d: registration not idle after Close: %v", i, errs[i])
			}
			if nd.PacketConn != nil {
				nd.PacketConn.Close()
			}
		}
	}
}

// Network returns the network the mesh runs on.
func (m *Mesh) Network() *Network { return m.net }

// Configuration returns the configuration every node uses, for connections
// the test makes itself.
func (m *Mesh) Configuration() *conn.Configuration { return m.cfg }

// Len returns the number of nodes.
func (m *Mesh) Len() int { return len(m.nodes) }

// Node returns node i. It panics if i is out of range, as an index does.
func (m *Mesh) Node(i int) *Node { return m.nodes[i] }

// Nodes returns every node, in order of Index.
func (m *Mesh) Nodes() []*Node { return slices.Clone(m.nodes) }

// Hosts returns the host addresses of nodes from to to-1, for
// Network.Partition and Network.SetLink: m.Network().Partition(m.Hosts(0, 5),
// m.Hosts(5, m.Len())) splits the first five nodes from the rest. It panics
// if the range is out of bounds, as slicing does.
func (m *Mesh) Hosts(from, to int) []string {
	hosts := make([]string, 0, to-from)
	for _, nd := range m.nodes[from:to] {
		hosts = append(hosts, nd.Host)
	}
	return hosts
}

// Conn returns the node's current connection to node peer (nil for the node
// itself). After Remesh it is the new connection.
func (nd *Node) Conn(peer int) *conn.Connection {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	return nd.conns[peer]
}

func (nd *Node) setConn(peer int, c *conn.Connection) {
	nd.mu.Lock()
	nd.conns[peer] = c
	nd.mu.Unlock()
}

// Remesh makes a new connection for every pair of nodes whose connection
// has shut down on either side — after a partition longer than the idle
// timeout, say — and returns how many it made. A side that is still up when
// its peer's side is down is shut down first (code 0). Remesh returns when
// every new connection is Connected, or with an error naming a pair that
// could not connect (within its handshake timeout, or before ctx ended);
// the connections made by then stay in place.
func (m *Mesh) Remesh(ctx context.Context) (int, error) {
	var pairs [][2]int
	for i, a := range m.nodes {
		for j := i + 1; j < len(m.nodes); j++ {
			ca, cb := a.Conn(j), m.nodes[j].Conn(i)
			if up(ca) && up(cb) {
				continue
			}
			for _, c := range []*conn.Connection{ca, cb} {
				if up(c) {
					c.Shutdown(0)
				}
			}
			pairs = append(pairs, [2]int{i, j})
		}
	}
	return len(pairs), m.connect(ctx, pairs)
}

func up(c *conn.Connection) bool { return c != nil && c.State() < conn.Shutdown }

// connect makes the connection of every pair {client, server}: the clients
// dial, meshParallel at a time, while each server's listener accepts until
// all of its pairs are connected.
func (m *Mesh) connect(ctx context.Context, pairs [][2]int) error {
	if len(pairs) == 0 {
		return nil
	}
	hs := m.cfg.Settings.HandshakeTimeout
	if hs == 0 {
		hs = conn.DefaultHandshakeTimeout
	}
	ctx, cancel := context.WithTimeoutCause(ctx, (hs+time.Second)*time.Duration(1+len(pairs)/meshParallel),
		errors.New("the mesh took longer than a handshake timeout per round of handshakes"))
	defer cancel()

	// wanted[server] holds the clients whose connection the server still
	// waits for.
	var mu sync.Mutex
	wanted := make(map[int]map[int]bool)
	for _, p := range pairs {
		if wanted[p[1]] == nil {
			wanted[p[1]] = make(map[int]bool)
		}
		wanted[p[1]][p[0]] = true
	}
	var accepting sync.WaitGroup
	for server, clients := range wanted {
		actx, stop := context.WithCancel(ctx)
		accepting.Go(func() {
			defer stop()
			m.acceptPeers(actx, ctx, server, clients, &mu, stop)
		})
	}

	queue := make(chan [2]int, len(pairs))
	for _, p := range pairs {
		queue <- p
	}
	close(queue)
	var dialing sync.WaitGroup
	var errMu sync.Mutex
	var firstErr error
	failed := 0
	for range min(len(pairs), meshParallel) {
		dialing.Go(func() {
			for p := range queue {
				if err := m.dial(ctx, p[0], p[1]); err != nil {
					errMu.Lock()
					if failed++; firstErr == nil {
						firstErr = err
					}
					errMu.Unlock()
					cancel() // the servers will not see every pair: stop waiting
				}
			}
		})
	}
	dialing.Wait()
	accepting.Wait()
	if firstErr != nil {
		// Once one failed the others were cancelled; the first says why.
		return fmt.Errorf("%d of %d connections failed, the first: %w", failed, len(pairs), firstErr)
	}
	for server, clients := range wanted {
		if len(clients) > 0 {
			// Every client is Connected, so its server finished its
			// handshake; the listener never handed the connection out.
			return fmt.Errorf("node %d did not accept %d of its clients: %w", server, len(clients), context.Cause(ctx))
		}
	}
	return nil
}

// dial connects node client to node server.
func (m *Mesh) dial(ctx context.Context, client, server int) error {
	nd := m.nodes[client]
	c, err := conn.New(nd.Registration, nd.Credential, conn.WithPacketConn(nd.PacketConn))
	if err != nil {
		return fmt.Errorf("node %d → node %d: %w", client, server, err)
	}
	if err := c.Start(ctx, m.cfg, m.nodes[server].Host, MeshPort); err != nil {
		return fmt.Errorf("node %d → node %d: %w", client, server, err)
	}
	nd.setConn(server, c)
	return nil
}

// acceptPeers accepts on server's listener until every client in clients
// has connected (then it calls done) or actx ends. Each connection finishes
// its handshake in a goroutine of its own, within ctx, so that a slow one
// does not hold up the others; one whose peer is not a wanted client is
// shut down.
func (m *Mesh) acceptPeers(actx, ctx context.Context, server int, clients map[int]bool, mu *sync.Mutex, done func()) {
	nd := m.nodes[server]
	var handshakes sync.WaitGroup
	defer handshakes.Wait()
	for {
		c, err := nd.Listener.Accept(actx)
		if err != nil {
			return
		}
		handshakes.Go(func() {
			if c.Accept(ctx) != nil {
				return // the client sees the failure and reports it
			}
			cert := c.RemoteCertificate()
			client, known := -1, false
			if cert != nil {
				client, known = m.index[certverify.HashOf(cert.Raw)]
			}
			mu.Lock()
			wanted := known && clients[client]
			delete(clients, client)
			last := wanted && len(clients) == 0
			mu.Unlock()
			if !wanted {
				c.Shutdown(0)
				return
			}
			nd.setConn(client, c)
			if last {
				done()
			}
		})
	}
}
