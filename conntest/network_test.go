package conntest_test

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/quicconn/quicconn/conntest"
)

// bothClocks runs f on the real clock and inside a synctest bubble, as two
// subtests: what the network does must not depend on which clock it reads.
func bothClocks(t *testing.T, f func(t *testing.T)) {
	t.Run("real time", f)
	t.Run("synctest", func(t *testing.T) { synctest.Test(t, f) })
}

// listen opens a socket on n, closed when the test ends.
func listen(t testing.TB, n *conntest.Network, addr string) *conntest.PacketConn {
	t.Helper()
	c, err := n.ListenPacket(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// recvOne reads one packet within wait and returns its payload and sender,
// or ok false on a timeout.
func recvOne(t testing.TB, c *conntest.PacketConn, wait time.Duration) (msg string, from net.Addr, ok bool) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(wait))
	defer c.SetReadDeadline(time.Time{})
	buf := make([]byte, 1500)
	n, from, err := c.ReadFrom(buf)
	if isTimeout(err) {
		return "", nil, false
	}
	if err != nil {
		t.Fatalf("ReadFrom: %v", err)
	}
	return string(buf[:n]), from, true
}

// reaches sends one packet from a to b and reports whether it arrived
// within a second.
func reaches(t testing.TB, a, b *conntest.PacketConn) bool {
	t.Helper()
	msg := fmt.Sprintf("%v→%v", a.LocalAddr(), b.LocalAddr())
	if _, err := a.WriteTo([]byte(msg), b.LocalAddr()); err != nil {
		t.Fatalf("WriteTo: %v", err)
	}
	got, _, ok := recvOne(t, b, time.Second)
	if ok && got != msg {
		t.Fatalf("%v read %q, want %q", b.LocalAddr(), got, msg)
	}
	return ok
}

func TestNetworkDeliversBetweenEveryPair(t *testing.T) {
	bothClocks(t, func(t *testing.T) {
		n := conntest.NewNetwork(conntest.Link{Delay: 5 * time.Millisecond})
		// Three hosts with two sockets each, one of them on IPv6.
		var socks []*conntest.PacketConn
		for _, addr := range []string{
			"10.0.0.1:1", "10.0.0.1:2", "10.0.0.2:4433", "10.0.0.2:0", "[fd00::3]:4433", "[fd00::3]:0",
		} {
			socks = append(socks, listen(t, n, addr))
		}
		for _, a := range socks {
			for _, b := range socks {
				msg := fmt.Sprintf("%v→%v", a.LocalAddr(), b.LocalAddr())
				a.WriteTo([]byte(msg), b.LocalAddr())
				got, from, ok := recvOne(t, b, time.Second)
				if !ok || got != msg {
					t.Errorf("%s: read %q, %v", msg, got, ok)
					continue
				}
				if from.String() != a.LocalAddr().String() {
					t.Errorf("%s: from %v, want %v", msg, from, a.LocalAddr())
				}
			}
		}
	})
}

func TestListenPacket(t *testing.T) {
	for _, tc := range []struct {
		name string
		addr string
		// before opens other sockets first.
		before   []string
		wantAddr string // "" for any address on the host the port picks
		wantErr  error  // matched with errors.Is; nil for success
		wantMsg  string // the start of the error message, if wantErr
	}{
		{name: "a fixed port", addr: "10.0.0.7:4433", wantAddr: "10.0.0.7:4433"},
		{name: "IPv6", addr: "[fd00::7]:4433", wantAddr: "[fd00::7]:4433"},
		{name: "an IPv4-mapped address is the IPv4 host", addr: "[::ffff:10.0.0.7]:1", wantAddr: "10.0.0.7:1"},
		{name: "the same port on another host", addr: "10.0.0.8:4433", before: []string{"10.0.0.7:4433"}, wantAddr: "10.0.0.8:4433"},
		{name: "port 0 picks a port", addr: "10.0.0.7:0"},
		{name: "port 0 skips taken ports", addr: "10.0.0.7:0", before: []string{"10.0.0.7:32768", "10.0.0.7:32769"}, wantAddr: "10.0.0.7:32770"},
		{
			name: "an address in use", addr: "10.0.0.7:4433", before: []string{"10.0.0.7:4433"},
			wantErr: syscall.EADDRINUSE, wantMsg: "listen udp 10.0.0.7:4433: bind: address already in use",
		},
		{name: "no port", addr: "10.0.0.7", wantErr: errAddr},
		{name: "a host name", addr: "node1:4433", wantErr: errAddr},
		{name: "the unspecified address", addr: "0.0.0.0:4433", wantErr: errAddr},
		{name: "no host", addr: ":4433", wantErr: errAddr},
		{name: "a port out of range", addr: "10.0.0.7:65536", wantErr: errAddr},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := conntest.NewNetwork(conntest.Link{})
			for _, b := range tc.before {
				listen(t, n, b)
			}
			c, err := n.ListenPacket(tc.addr)
			if tc.wantErr != nil {
				var opErr *net.OpError
				if !matches(err, tc.wantErr) || !errors.As(err, &opErr) || opErr.Op != "listen" {
					t.Fatalf("ListenPacket(%q) = %v, want a listen *net.OpError matching %v", tc.addr, err, tc.wantErr)
				}
				if tc.wantMsg != "" && err.Error() != tc.wantMsg {
					t.Errorf("error %q, want %q", err, tc.wantMsg)
				}
				return
			}
			if err != nil {
				t.Fatalf("ListenPacket(%q): %v", tc.addr, err)
			}
			defer c.Close()
			got := c.LocalAddr().(*net.UDPAddr)
			if tc.wantAddr != "" && got.String() != tc.wantAddr {
				t.Errorf("LocalAddr = %v, want %s", got, tc.wantAddr)
			}
			if got.Port == 0 {
				t.Errorf("LocalAddr = %v, want a port", got)
			}
		})
	}
}

// errAddr stands for the *net.AddrError of a malformed address in the
// tables; matches checks for it.
var errAddr = errors.New("a *net.AddrError")

// matches reports whether err is want, or a *net.AddrError for errAddr.
func matches(err, want error) bool {
	if want == errAddr {
		var ae *net.AddrError
		return errors.As(err, &ae)
	}
	return errors.Is(err, want)
}

func TestListenPacketAfterClose(t *testing.T) {
	n := conntest.NewNetwork(conntest.Link{})
	a := listen(t, n, "10.0.0.1:1")
	old := listen(t, n, "10.0.0.2:1")
	old.Close()
	a.WriteTo([]byte("to a closed socket"), old.LocalAddr())
	// The address is free again, and the new socket gets what is sent to it.
	b := listen(t, n, "10.0.0.2:1")
	if !reaches(t, a, b) {
		t.Error("the socket reopened at a closed one's address receives nothing")
	}
	if st := a.Stats(); st != (conntest.LinkStats{Sent: 2, Delivered: 1, Dropped: 1}) {
		t.Errorf("Stats = %+v", st)
	}
}

func TestNetworkLinks(t *testing.T) {
	// oneWay is the delay of one packet from a to b.
	oneWay := func(t *testing.T, a, b *conntest.PacketConn) time.Duration {
		t.Helper()
		start := time.Now()
		if !reaches(t, a, b) {
			t.Fatalf("%v → %v: nothing arrived", a.LocalAddr(), b.LocalAddr())
		}
		return time.Since(start)
	}
	for _, tc := range []struct {
		name string
		// set changes the links of a network whose hosts 10.0.0.1 to
		// 10.0.0.3 each have a socket, given in s (s[3] is a second socket
		// on host 10.0.0.1), all with the default link of 10 ms.
		set  func(n *conntest.Network, s []*conntest.PacketConn)
		want map[[2]int]time.Duration // the one-way delay between sockets
	}{
		{
			name: "the default link joins every pair; a host's loopback is instant",
			set:  func(*conntest.Network, []*conntest.PacketConn) {},
			want: map[[2]int]time.Duration{{0, 1}: 10 * time.Millisecond, {1, 2}: 10 * time.Millisecond, {0, 3}: 0, {3, 0}: 0},
		},
		{
			name: "SetLink changes both directions of one pair",
			set: func(n *conntest.Network, _ []*conntest.PacketConn) {
				n.SetLink("10.0.0.1", "10.0.0.2", conntest.Link{Delay: 50 * time.Millisecond})
			},
			want: map[[2]int]time.Duration{
				{0, 1}: 50 * time.Millisecond, {1, 0}: 50 * time.Millisecond, {3, 1}: 50 * time.Millisecond,
				{0, 2}: 10 * time.Millisecond, {2, 1}: 10 * time.Millisecond,
			},
		},
		{
			name: "SetOneWayLink changes one direction",
			set: func(n *conntest.Network, _ []*conntest.PacketConn) {
				n.SetOneWayLink("10.0.0.1", "10.0.0.2", conntest.Link{Delay: 80 * time.Millisecond})
			},
			want: map[[2]int]time.Duration{{0, 1}: 80 * time.Millisecond, {1, 0}: 10 * time.Millisecond},
		},
		{
			name: "SetLink of a host with itself sets its loopback",
			set: func(n *conntest.Network, _ []*conntest.PacketConn) {
				n.SetLink("10.0.0.1", "10.0.0.1", conntest.Link{Delay: time.Millisecond})
			},
			want: map[[2]int]time.Duration{{0, 3}: time.Millisecond, {0, 1}: 10 * time.Millisecond},
		},
		{
			name: "PacketConn.SetLink sets every direction from its host, to hosts that come later too",
			set: func(n *conntest.Network, s []*conntest.PacketConn) {
				s[0].SetLink(conntest.Link{Delay: 30 * time.Millisecond})
			},
			want: map[[2]int]time.Duration{
				{0, 1}: 30 * time.Millisecond, {3, 2}: 30 * time.Millisecond, {0, 4}: 30 * time.Millisecond,
				{1, 0}: 10 * time.Millisecond, {0, 3}: 0,
			},
		},
		{
			name: "the last call wins",
			set: func(n *conntest.Network, s []*conntest.PacketConn) {
				s[0].SetLink(conntest.Link{Delay: 30 * time.Millisecond})
				n.SetLink("10.0.0.1", "10.0.0.2", conntest.Link{Delay: 60 * time.Millisecond})
			},
			want: map[[2]int]time.Duration{{0, 1}: 60 * time.Millisecond, {0, 2}: 30 * time.Millisecond},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				n := conntest.NewNetwork(conntest.Link{Delay: 10 * time.Millisecond})
				s := []*conntest.PacketConn{
					listen(t, n, "10.0.0.1:1"), listen(t, n, "10.0.0.2:1"), listen(t, n, "10.0.0.3:1"), listen(t, n, "10.0.0.1:2"),
				}
				tc.set(n, s)
				s = append(s, listen(t, n, "10.0.0.4:1")) // a host that comes later
				for pair, want := range tc.want {
					if got := oneWay(t, s[pair[0]], s[pair[1]]); got != want {
						t.Errorf("%v → %v took %v, want %v", s[pair[0]].LocalAddr(), s[pair[1]].LocalAddr(), got, want)
					}
				}
			})
		})
	}
}

func TestNetworkImpairmentIsPerLink(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := conntest.NewNetwork(conntest.Link{Seed: 1})
		a, b, c := listen(t, n, "10.0.0.1:1"), listen(t, n, "10.0.0.2:1"), listen(t, n, "10.0.0.3:1")
		b.SetReadBuffer(64 << 20)
		c.SetReadBuffer(64 << 20)
		n.SetLink("10.0.0.1", "10.0.0.2", conntest.Link{Loss: 0.1, Duplicate: 0.05, Seed: 2})
		sendNumbered(t, a, b, 5000, 100)
		sendNumbered(t, a, c, 5000, 100)
		toB, toC := recvNumbered(t, b, time.Second), recvNumbered(t, c, time.Second)

		ab, ac := n.LinkStats("10.0.0.1", "10.0.0.2"), n.LinkStats("10.0.0.1", "10.0.0.3")
		near(t, "10.0.0.1→10.0.0.2 Dropped", ab.Dropped, 0.1*5000)
		near(t, "10.0.0.1→10.0.0.2 Duplicated", ab.Duplicated, 0.05*4500)
		if uint64(len(toB)) != ab.Delivered || ab.Sent != 5000 || ab.Sent+ab.Duplicated != ab.Delivered+ab.Dropped {
			t.Errorf("10.0.0.1→10.0.0.2: read %d, LinkStats %+v do not add up", len(toB), ab)
		}
		if want := (conntest.LinkStats{Sent: 5000, Delivered: 5000}); ac != want || len(toC) != 5000 {
			t.Errorf("the untouched link: read %d, LinkStats %+v, want %+v", len(toC), ac, want)
		}
		if ba := n.LinkStats("10.0.0.2", "10.0.0.1"); ba != (conntest.LinkStats{}) {
			t.Errorf("nothing was sent 10.0.0.2→10.0.0.1, LinkStats %+v", ba)
		}
		host := n.HostStats("10.0.0.1")
		sum := conntest.LinkStats{
			Sent: ab.Sent + ac.Sent, Delivered: ab.Delivered + ac.Delivered, Dropped: ab.Dropped + ac.Dropped,
			Duplicated: ab.Duplicated + ac.Duplicated,
		}
		if host != sum || a.Stats() != sum {
			t.Errorf("HostStats %+v and the socket's Stats %+v, want the sum of its links %+v", host, a.Stats(), sum)
		}
	})
}

func TestNetworkSeedDeterminesDecisions(t *testing.T) {
	// run sends packets between four hosts and returns what each socket
	// read, in order.
	run := func(l conntest.Link) [][]int {
		var got [][]int
		synctest.Test(t, func(t *testing.T) {
			n := conntest.NewNetwork(l)
			var s []*conntest.PacketConn
			for i := range 4 {
				s = append(s, listen(t, n, fmt.Sprintf("10.0.0.%d:1", i+1)))
			}
			for _, a := range s {
				for _, b := range s {
					if a != b {
						sendNumbered(t, a, b, 300, 100)
					}
				}
			}
			for _, b := range s {
				got = append(got, indices(recvNumbered(t, b, time.Second)))
			}
		})
		return got
	}
	l := conntest.Link{Loss: 0.1, Duplicate: 0.05, Reorder: 0.05, Delay: time.Millisecond, Jitter: time.Millisecond, Seed: 5}
	first, again := run(l), run(l)
	if !slices.EqualFunc(first, again, slices.Equal) {
		t.Error("the same Seed gave different packets")
	}
	l.Seed = 6
	if other := run(l); slices.EqualFunc(first, other, slices.Equal) {
		t.Error("Seed 6 gave the same packets as Seed 5")
	}
}

func TestNetworkPartition(t *testing.T) {
	hosts := []string{"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5"}
	for _, tc := range []struct {
		name   string
		groups [][]string
		// reach[i][j] says whether host i reaches host j while the
		// partition lasts.
		reach [5][5]bool
	}{
		{
			name:   "two groups name every host",
			groups: [][]string{{"10.0.0.1", "10.0.0.2"}, {"10.0.0.3", "10.0.0.4", "10.0.0.5"}},
			reach:  blocks(2, 3),
		},
		{
			name:   "hosts named nowhere form one more group",
			groups: [][]string{{"10.0.0.1"}, {"10.0.0.2", "10.0.0.3"}},
			reach:  blocks(1, 2, 2),
		},
		{
			name:   "one group cuts its hosts off from the rest",
			groups: [][]string{{"10.0.0.1", "10.0.0.2", "10.0.0.3"}},
			reach:  blocks(3, 2),
		},
		{
			name:   "a group of every host cuts nothing",
			groups: [][]string{hosts},
			reach:  blocks(5),
		},
		{
			name:  "no groups is Heal",
			reach: blocks(5),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				n := conntest.NewNetwork(conntest.Link{Delay: 10 * time.Millisecond})
				var s []*conntest.PacketConn
				for _, h := range hosts {
					s = append(s, listen(t, n, h+":1"))
				}
				n.Partition([]string{"10.0.0.5"}) // replaced by the one under test
				n.Partition(tc.groups...)
				for i := range s {
					for j := range s {
						if got := reaches(t, s[i], s[j]); got != tc.reach[i][j] {
							t.Errorf("during the partition %s → %s delivered %v, want %v", hosts[i], hosts[j], got, tc.reach[i][j])
						}
					}
				}
				n.Heal()
				for i := range s {
					for j := range s {
						if !reaches(t, s[i], s[j]) {
							t.Errorf("after Heal %s → %s delivered nothing", hosts[i], hosts[j])
						}
					}
				}
			})
		})
	}
}

// blocks returns the reachability of hosts split into consecutive groups of
// the given sizes.
func blocks(sizes ...int) [5][5]bool {
	var group [5]int
	i := 0
	for g, size := range sizes {
		for range size {
			group[i] = g
			i++
		}
	}
	var r [5][5]bool
	for a := range r {
		for b := range r[a] {
			r[a][b] = group[a] == group[b]
		}
	}
	return r
}

func TestNetworkPartitionDropsWhatIsInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := conntest.NewNetwork(conntest.Link{Delay: 10 * time.Millisecond})
		a, b, c := listen(t, n, "10.0.0.1:1"), listen(t, n, "10.0.0.2:1"), listen(t, n, "10.0.0.3:1")
		a.WriteTo([]byte("arrived"), b.LocalAddr())
		time.Sleep(20 * time.Millisecond)
		a.WriteTo([]byte("cut off"), b.LocalAddr())
		a.WriteTo([]byte("same side"), c.LocalAddr())
		n.Partition([]string{"10.0.0.1", "10.0.0.3"}, []string{"10.0.0.2"})
		if got := recvNumbered(t, b, time.Second); len(got) != 1 {
			t.Errorf("b read %d packets, want only the one that had arrived before the cut", len(got))
		}
		if msg, _, ok := recvOne(t, c, time.Second); !ok || msg != "same side" {
			t.Errorf("c read %q, %v; want the packet sent within its group", msg, ok)
		}
		want := conntest.LinkStats{Sent: 2, Delivered: 1, Dropped: 1}
		if st := n.LinkStats("10.0.0.1", "10.0.0.2"); st != want {
			t.Errorf("LinkStats across the cut = %+v, want %+v", st, want)
		}
	})
}

func TestNetworkPanicsOnBugsInTheTest(t *testing.T) {
	n := conntest.NewNetwork(conntest.Link{})
	for _, tc := range []struct {
		name string
		f    func()
	}{
		{"a host in two groups", func() { n.Partition([]string{"10.0.0.1"}, []string{"10.0.0.2", "10.0.0.1"}) }},
		{"a host that is not an IP in Partition", func() { n.Partition([]string{"node1"}) }},
		{"an address with a port as a host", func() { n.SetLink("10.0.0.1:1", "10.0.0.2", conntest.Link{}) }},
		{"an invalid Link in SetLink", func() { n.SetLink("10.0.0.1", "10.0.0.2", conntest.Link{Loss: 2}) }},
		{"an invalid Link in SetOneWayLink", func() { n.SetOneWayLink("10.0.0.1", "10.0.0.2", conntest.Link{Delay: -1}) }},
		{"an invalid default Link", func() { conntest.NewNetwork(conntest.Link{MTU: -1}) }},
		{"a host that is not an IP in LinkStats", func() { n.LinkStats("", "10.0.0.1") }},
		{"a host that is not an IP in HostStats", func() { n.HostStats("x") }},
	} {
		t.Run(tc.name, func(t *testing.T) { mustPanic(t, tc.name, tc.f) })
	}
}

func TestRebind(t *testing.T) {
	for _, tc := range []struct {
		name, to string
		want     string // the new address; "" for any port on the host of to
		slow     bool   // the new host is behind a 100 ms link
	}{
		{name: "a new port", to: "10.0.0.1:2000", want: "10.0.0.1:2000"},
		{name: "port 0 picks a port", to: "10.0.0.1:0"},
		{name: "a new host, whose links apply", to: "10.0.0.9:2000", want: "10.0.0.9:2000", slow: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				n := conntest.NewNetwork(conntest.Link{Delay: 10 * time.Millisecond})
				n.SetLink("10.0.0.9", "10.0.0.2", conntest.Link{Delay: 100 * time.Millisecond})
				c, srv := listen(t, n, "10.0.0.1:1000"), listen(t, n, "10.0.0.2:443")
				c.WriteTo([]byte("before"), srv.LocalAddr())
				if _, from, _ := recvOne(t, srv, time.Second); from.String() != "10.0.0.1:1000" {
					t.Fatalf("before Rebind the packet came from %v", from)
				}
				srv.WriteTo([]byte("in flight to the old address"), from(t, "10.0.0.1:1000"))

				if err := c.Rebind(tc.to); err != nil {
					t.Fatalf("Rebind(%q): %v", tc.to, err)
				}
				start := time.Now()
				c.WriteTo([]byte("after"), srv.LocalAddr())
				_, got, ok := recvOne(t, srv, time.Second)
				if !ok {
					t.Fatal("the rebound socket's packet did not arrive")
				}
				if tc.want != "" && got.String() != tc.want {
					t.Errorf("after Rebind the packet came from %v, want %s", got, tc.want)
				}
				if got.String() == "10.0.0.1:1000" {
					t.Errorf("after Rebind the packet still came from the old address")
				}
				if d, want := time.Since(start), map[bool]time.Duration{false: 10 * time.Millisecond, true: 100 * time.Millisecond}[tc.slow]; d != want {
					t.Errorf("the packet took %v, want the %v of the new host's link", d, want)
				}
				if c.LocalAddr().String() != "10.0.0.1:1000" {
					t.Errorf("LocalAddr = %v after Rebind, want the address it was opened at", c.LocalAddr())
				}

				// The old mapping is gone: what was in flight to it, and
				// what is sent to it now, is lost; the new one works.
				srv.WriteTo([]byte("to the old address"), from(t, "10.0.0.1:1000"))
				if msg, _, ok := recvOne(t, c, time.Second); ok {
					t.Errorf("the rebound socket read %q, sent to its old address", msg)
				}
				srv.WriteTo([]byte("reply"), got)
				if msg, _, ok := recvOne(t, c, time.Second); !ok || msg != "reply" {
					t.Errorf("a reply to the new address: read %q, %v", msg, ok)
				}
				if st := srv.Stats(); st != (conntest.LinkStats{Sent: 3, Delivered: 1, Dropped: 2}) {
					t.Errorf("the server's Stats = %+v", st)
				}
				// The old address is free for another socket.
				listen(t, n, "10.0.0.1:1000")
			})
		})
	}
}

func from(t testing.TB, s string) net.Addr {
	t.Helper()
	return net.UDPAddrFromAddrPort(netip.MustParseAddrPort(s))
}

func TestRebindErrors(t *testing.T) {
	n := conntest.NewNetwork(conntest.Link{})
	c := listen(t, n, "10.0.0.1:1")
	listen(t, n, "10.0.0.1:2")
	if err := c.Rebind("10.0.0.1:1"); err != nil {
		t.Errorf("Rebind to its own address = %v, want nil", err)
	}
	closed := listen(t, n, "10.0.0.5:1")
	closed.Close()
	for _, tc := range []struct {
		name string
		c    *conntest.PacketConn
		to   string
		want error
	}{
		{"an address in use", c, "10.0.0.1:2", syscall.EADDRINUSE},
		{"not an address", c, "10.0.0.1", errAddr},
		{"a closed socket", closed, "10.0.0.6:1", net.ErrClosed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.c.Rebind(tc.to)
			var opErr *net.OpError
			if !matches(err, tc.want) || !errors.As(err, &opErr) || opErr.Op != "rebind" {
				t.Errorf("Rebind(%q) = %v, want a rebind *net.OpError matching %v", tc.to, err, tc.want)
			}
		})
	}
	if c.LocalAddr().String() != "10.0.0.1:1" {
		t.Errorf("a failed Rebind moved the socket to %v", c.LocalAddr())
	}
}
