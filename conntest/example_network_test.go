package conntest_test

import (
	"context"
	"fmt"
	"time"

	"github.com/quicconn/quicconn/conntest"
	"github.com/quicconn/quicconn/stream"
)

func ExampleNetwork() {
	n := conntest.NewNetwork(conntest.Link{Delay: 10 * time.Millisecond})
	n.SetLink("10.0.0.1", "10.0.0.3", conntest.Link{Loss: 1}) // a dead path
	a, _ := n.ListenPacket("10.0.0.1:4433")
	b, _ := n.ListenPacket("10.0.0.2:0") // port 0 picks one
	c, _ := n.ListenPacket("10.0.0.3:0")
	defer a.Close()
	defer b.Close()
	defer c.Close()

	a.WriteTo([]byte("hello b"), b.LocalAddr())
	a.WriteTo([]byte("hello c"), c.LocalAddr()) // lost on the dead path
	buf := make([]byte, 1500)
	k, from, _ := b.ReadFrom(buf)
	fmt.Printf("%v read %q from %v\n", b.LocalAddr(), buf[:k], from)

	n.Partition([]string{"10.0.0.2"}) // cut 10.0.0.2 off from the others
	a.WriteTo([]byte("cut off"), b.LocalAddr())
	n.Heal()

	fmt.Printf("10.0.0.1 → 10.0.0.2 %+v\n", n.LinkStats("10.0.0.1", "10.0.0.2"))
	fmt.Printf("10.0.0.1 → 10.0.0.3 %+v\n", n.LinkStats("10.0.0.1", "10.0.0.3"))
	// Output:
	// 10.0.0.2:32768 read "hello b" from 10.0.0.1:4433
	// 10.0.0.1 → 10.0.0.2 {Sent:2 Delivered:1 Dropped:1 Duplicated:0 Reordered:0}
	// 10.0.0.1 → 10.0.0.3 {Sent:1 Delivered:0 Dropped:1 Duplicated:0 Reordered:0}
}

func ExamplePacketConn_Rebind() {
	n := conntest.NewNetwork(conntest.Link{})
	server, _ := n.ListenPacket("10.0.0.1:443")
	client, _ := n.ListenPacket("192.168.1.10:5000")
	defer server.Close()
	defer client.Close()
	buf := make([]byte, 1500)

	client.WriteTo([]byte("hello"), server.LocalAddr())
	_, from, _ := server.ReadFrom(buf)
	fmt.Println("from", from)

	// The client's NAT forgets its mapping and makes a new one.
	client.Rebind("203.0.113.7:61000")
	client.WriteTo([]byte("hello again"), server.LocalAddr())
	_, from, _ = server.ReadFrom(buf)
	fmt.Println("from", from, "- the client still thinks it is", client.LocalAddr())
	// Output:
	// from 192.168.1.10:5000
	// from 203.0.113.7:61000 - the client still thinks it is 192.168.1.10:5000
}

func ExampleNewMesh() {
	t := &exampleTB{name: "ExampleNewMesh"} // in a test: the test's t
	defer t.finish()

	n := conntest.NewNetwork(conntest.Link{Delay: 5 * time.Millisecond, Loss: 0.01})
	m := conntest.NewMesh(t, n, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// Node 0 broadcasts a message to the others.
	for peer := 1; peer < m.Len(); peer++ {
		s, err := m.Node(0).Conn(peer).OpenSendStream(ctx)
		if err != nil {
			fmt.Println(err)
			return
		}
		s.Send(ctx, []byte("block 1"))
		s.Close()
	}
	for peer := 1; peer < m.Len(); peer++ {
		rs, err := m.Node(peer).Conn(0).AcceptInboundUniStream(ctx)
		if err != nil {
			fmt.Println(err)
			return
		}
		msg, err := stream.NewMessageReader(rs, 0).ReadMessage()
		fmt.Printf("node %d (%s) got %q %v\n", peer, m.Node(peer).Host, msg, err)
	}
	// Output:
	// node 1 (10.0.0.2) got "block 1" <nil>
	// node 2 (10.0.0.3) got "block 1" <nil>
}
