package conn_test

// The behaviour table of the design, state × operation, as one table of
// named cases ("Connecting/OpenOutboundStream"). Every case runs inside
// testing/synctest bubbles over a conntest network: time is fake, so
// timeouts cost nothing, and synctest.Wait proves that a call waits — it is
// still blocked when every goroutine of the bubble is — rather than guessing
// it from a sleep.

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/quicconn/quicconn/conn"
	"github.com/quicconn/quicconn/conntest"
	qerr "github.com/quicconn/quicconn/errors"
	"github.com/quicconn/quicconn/stream"
)

// A fixture is a connection in the state a cell is about, inside a synctest
// bubble, with what the cell needs to drive it.
type fixture struct {
	*env
	c    *conn.Connection // the connection under test
	peer *conn.Connection // its peer, once it has one
	sock *holdConn        // c's socket
	// host and port are where Start dials.
	host string
	port uint16
	// started delivers the result of the Start that began c's handshake,
	// for a client in Connecting (for a server, its peer's Start).
	started <-chan result
	// end shuts c down from outside (its peer or its registration) for
	// the cells that wait; endReason and endCode are what c's error then
	// says.
	end       func()
	endReason qerr.Reason
	endCode   uint64
	// proceed lets a held state go on: a server's handshake stalled in
	// Connecting, a close stalled in Shutdown.
	proceed func()
	// reason and code are those of c's error in Shutdown and
	// ShutdownComplete; local is set when c's own Shutdown closed it.
	reason qerr.Reason
	code   uint64
	local  bool
	// peerCert is the DER of the peer certificate c has verified, nil if
	// it has none.
	peerCert []byte
}

// A variant is one way to reach a state: a client or a server, shut down by
// this side or the peer.
type variant struct {
	name  string
	enter func(t *testing.T, s conn.Settings) *fixture
}

var (
	inOpen       = []variant{{"client", enterOpen}}
	inConnecting = []variant{{"client", enterConnectingClient}, {"server", enterConnectingServer}}
	inConnected  = []variant{{"client", enterConnected}, {"server", enterConnectedServer}}
	inShutdown   = []variant{{"local", enterShutdown}}
	inComplete   = []variant{{"local", enterCompleteLocal}, {"peer", enterCompletePeer}, {"never connected", enterCompleteUnconnected}}
)

// enterOpen: a client made by New, not started. Start would dial an address
// where nothing answers; end starts it there and closes its registration.
func enterOpen(t *testing.T, s conn.Settings) *fixture {
	t.Helper()
	e := newEnv(t, envOptions{server: s, client: s, net: inMemory})
	c, sock := e.clientOn()
	f := &fixture{env: e, c: c, sock: sock, host: silentHost, port: serverPort, endReason: qerr.ConnectionClosed}
	f.end = func() {
		t.Helper()
		done := started(func() error { return c.Start(context.Background(), e.cfg, silentHost, serverPort) })
		if _, waiting := blocked(done); !waiting || c.State() != conn.Connecting {
			t.Fatalf("Start against a silent address: state %v", c.State())
		}
		e.reg.Close()
	}
	return f
}

// enterConnectingClient: a client whose handshake goes to an address where
// nothing answers, so that it stays Connecting until its handshake budget
// (10s of fake time) runs out. end closes its registration.
func enterConnectingClient(t *testing.T, s conn.Settings) *fixture {
	t.Helper()
	f := enterOpen(t, s)
	f.started = started(func() error { return f.c.Start(context.Background(), f.cfg, silentHost, serverPort) })
	if r, waiting := blocked(f.started); !waiting {
		t.Fatalf("Start against a silent address returned %v", r.err)
	}
	if st := f.c.State(); st != conn.Connecting {
		t.Fatalf("State = %v, want Connecting", st)
	}
	f.end = func() { f.reg.Close() }
	return f
}

// enterConnectingServer: a server connection as Listener.Accept hands it
// out, its handshake stalled by a partition before the client's second
// flight; proceed heals the partition, end closes the registration.
func enterConnectingServer(t *testing.T, s conn.Settings) *fixture {
	t.Helper()
	// With a one-way delay the client's second flight reaches the server a
	// round trip after Accept returns; the partition drops it.
	e := newEnv(t, envOptions{server: s, client: s, net: inMemory, link: conntest.Link{Delay: 10 * time.Millisecond}})
	client, csock := e.clientOn()
	f := &fixture{env: e, peer: client, sock: e.serverSock, host: e.host, port: e.port, endReason: qerr.ConnectionClosed,
		peerCert: e.clientCred.Certificate.Certificate[0]}
	f.started = started(func() error { return client.Start(context.Background(), e.cfg, e.host, e.port) })
	server, err := e.ln.Accept(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	csock.Partition(true)
	if st := server.State(); st != conn.Connecting {
		t.Fatalf("server %v when handed out, want Connecting", st)
	}
	f.c = server
	f.proceed = func() { csock.Partition(false) }
	f.end = func() { e.reg.Close() }
	return f
}

// enterConnected: a Connected client; end is the server's Shutdown(0x99).
func enterConnected(t *testing.T, s conn.Settings) *fixture {
	t.Helper()
	return enterConnectedWith(t, s, s)
}

// enterConnectedWith is enterConnected with settings for each side.
func enterConnectedWith(t *testing.T, client, server conn.Settings) *fixture {
	t.Helper()
	e := newEnv(t, envOptions{server: server, client: client, net: inMemory})
	c, peer, sock := e.pairOn()
	return &fixture{env: e, c: c, peer: peer, sock: sock, host: e.host, port: e.port,
		end: func() { peer.Shutdown(0x99) }, endReason: qerr.ShutdownByPeer, endCode: 0x99,
		peerCert: e.serverCred.Certificate.Certificate[0]}
}

// enterConnectedServer: a Connected server; end is the client's
// Shutdown(0x99).
func enterConnectedServer(t *testing.T, s conn.Settings) *fixture {
	t.Helper()
	e := newEnv(t, envOptions{server: s, client: s, net: inMemory})
	client, server := e.pair()
	return &fixture{env: e, c: server, peer: client, sock: e.serverSock, host: e.host, port: e.port,
		end: func() { client.Shutdown(0x99) }, endReason: qerr.ShutdownByPeer, endCode: 0x99,
		peerCert: e.clientCred.Certificate.Certificate[0]}
}

// enterShutdown: a client that called Shutdown(7) and cannot finish
// closing, its socket's writes held; proceed releases them.
func enterShutdown(t *testing.T, s conn.Settings) *fixture {
	t.Helper()
	f := enterConnected(t, s)
	f.sock.hold()
	if err := f.c.Shutdown(7); err != nil {
		t.Fatal(err)
	}
	synctest.Wait()
	if st := f.c.State(); st != conn.Shutdown {
		t.Fatalf("State = %v with the close held, want Shutdown", st)
	}
	f.reason, f.code, f.local = qerr.ShutdownByLocal, 7, true
	f.proceed, f.end = f.sock.release, nil
	return f
}

// enterCompleteLocal: a client closed by its own ShutdownAndWait(7).
func enterCompleteLocal(t *testing.T, s conn.Settings) *fixture {
	t.Helper()
	f := enterConnected(t, s)
	if err := f.c.ShutdownAndWait(context.Background(), 7); err != nil {
		t.Fatal(err)
	}
	f.reason, f.code, f.local, f.end = qerr.ShutdownByLocal, 7, true, nil
	return f
}

// enterCompletePeer: a client closed by its peer's Shutdown(7).
func enterCompletePeer(t *testing.T, s conn.Settings) *fixture {
	t.Helper()
	f := enterConnected(t, s)
	if err := f.peer.ShutdownAndWait(context.Background(), 7); err != nil {
		t.Fatal(err)
	}
	<-f.c.WatchShutdown()
	f.reason, f.code, f.end = qerr.ShutdownByPeer, 7, nil
	return f
}

// enterCompleteUnconnected: a client whose handshake ran out of its budget
// with nothing answering; it never had a peer certificate.
func enterCompleteUnconnected(t *testing.T, s conn.Settings) *fixture {
	t.Helper()
	f := enterOpen(t, s)
	if err := f.c.Start(context.Background(), f.cfg, silentHost, serverPort); err == nil {
		t.Fatal("Start against a silent address succeeded")
	}
	if st := f.c.State(); st != conn.ShutdownComplete {
		t.Fatalf("State after the handshake timed out = %v", st)
	}
	f.reason, f.end = qerr.HandshakeTimeout, nil
	return f
}

// An operation is a call on the connection under test.
type operation func(ctx context.Context, f *fixture) error

func opStart(ctx context.Context, f *fixture) error  { return f.c.Start(ctx, f.cfg, f.host, f.port) }
func opAccept(ctx context.Context, f *fixture) error { return f.c.Accept(ctx) }
func opCert(ctx context.Context, f *fixture) error {
	return second(f.c.ReceiveRemoteCertificate(ctx))
}
func opOpen(t stream.Type, failOnBlocked bool) operation {
	return func(ctx context.Context, f *fixture) error {
		return second(f.c.OpenOutboundStream(ctx, t, failOnBlocked))
	}
}
func opOpenSend(ctx context.Context, f *fixture) error { return second(f.c.OpenSendStream(ctx)) }
func opAcceptStream(ctx context.Context, f *fixture) error {
	return second(f.c.AcceptInboundStream(ctx))
}
func opAcceptUni(ctx context.Context, f *fixture) error {
	return second(f.c.AcceptInboundUniStream(ctx))
}
func opReceiveDatagram(ctx context.Context, f *fixture) error {
	return second(f.c.ReceiveDatagram(ctx))
}
func opSendDatagram(_ context.Context, f *fixture) error { return f.c.SendDatagram([]byte("x")) }
func opShutdown(_ context.Context, f *fixture) error     { return f.c.Shutdown(8) }
func opShutdownAndWait(ctx context.Context, f *fixture) error {
	return f.c.ShutdownAndWait(ctx, 8)
}
func opLocalAddr(_ context.Context, f *fixture) error  { return second(f.c.LocalAddr()) }
func opRemoteAddr(_ context.Context, f *fixture) error { return second(f.c.RemoteAddr()) }

// bubble runs f as a test inside a synctest bubble of its own.
func bubble(f func(t *testing.T)) func(t *testing.T) {
	return func(t *testing.T) { synctest.Test(t, f) }
}

// each runs check on a fresh fixture of every variant, each in a bubble of
// its own.
func each(vs []variant, s conn.Settings, check func(t *testing.T, f *fixture)) func(*testing.T) {
	return func(t *testing.T) {
		for _, v := range vs {
			t.Run(v.name, bubble(func(t *testing.T) { check(t, v.enter(t, s)) }))
		}
	}
}

// parts runs named checks as subtests.
func parts(ps ...part) func(*testing.T) {
	return func(t *testing.T) {
		for _, p := range ps {
			t.Run(p.name, p.test)
		}
	}
}

type part struct {
	name string
	test func(*testing.T)
}

// notStarted: the operation fails at once with ErrNotStarted and leaves
// the state as it was.
func notStarted(vs []variant, s conn.Settings, op operation) func(*testing.T) {
	return each(vs, s, func(t *testing.T, f *fixture) {
		before := f.c.State()
		err := atOnce(t, func(ctx context.Context) error { return op(ctx, f) })
		var oe *qerr.OpError
		if !errors.Is(err, qerr.ErrNotStarted) || !errors.As(err, &oe) {
			t.Errorf("in %v: %v, want an *OpError with ErrNotStarted", before, err)
		}
		if after := f.c.State(); after != before {
			t.Errorf("State went from %v to %v", before, after)
		}
	})
}

// lost: the operation fails at once with the connection's own error.
func lost(vs []variant, s conn.Settings, op operation) func(*testing.T) {
	return each(vs, s, func(t *testing.T, f *fixture) {
		before := f.c.State()
		err := atOnce(t, func(ctx context.Context) error { return op(ctx, f) })
		assertConnError(t, f.c, err, f.reason, f.code)
		if after := f.c.State(); after != before {
			t.Errorf("State went from %v to %v", before, after)
		}
	})
}

// waits: the operation waits; it ends with the context's error when its
// context ends first (cancelled, or at the instant of its deadline), and
// with the connection's error when the connection shuts down first.
func waits(vs []variant, s conn.Settings, op operation) func(*testing.T) {
	return func(t *testing.T) {
		for _, v := range vs {
			t.Run(v.name+"/context", bubble(func(t *testing.T) {
				f := v.enter(t, s)
				before := f.c.State()

				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				done := started(func() error { return op(ctx, f) })
				if r, waiting := blocked(done); !waiting {
					t.Fatalf("in %v: returned %v, want it to wait", before, r.err)
				}
				cancelled := time.Now()
				cancel()
				if r := <-done; !errors.Is(r.err, context.Canceled) {
					t.Errorf("cancelled: %v, want context.Canceled", r.err)
				} else if late := r.at.Sub(cancelled); late != 0 {
					t.Errorf("returned %v after it was cancelled, want at once", late)
				}

				ctx, cancel = context.WithTimeout(context.Background(), time.Second)
				defer cancel()
				deadline, _ := ctx.Deadline()
				done = started(func() error { return op(ctx, f) })
				if r, waiting := blocked(done); !waiting {
					t.Fatalf("in %v: returned %v, want it to wait", before, r.err)
				}
				r := <-done
				if !errors.Is(r.err, context.DeadlineExceeded) {
					t.Errorf("at the deadline: %v, want context.DeadlineExceeded", r.err)
				}
				if late := r.at.Sub(deadline); late != 0 {
					t.Errorf("returned %v after its deadline, want at the deadline", late)
				}
				if after := f.c.State(); after != before {
					t.Errorf("State went from %v to %v while it waited", before, after)
				}
			}))
			t.Run(v.name+"/shutdown", bubble(func(t *testing.T) {
				f := v.enter(t, s)
				done := started(func() error { return op(context.Background(), f) })
				if r, waiting := blocked(done); !waiting {
					t.Fatalf("in %v: returned %v, want it to wait", f.c.State(), r.err)
				}
				ended := time.Now()
				f.end()
				r := <-done
				assertConnError(t, f.c, r.err, f.endReason, f.endCode)
				if late := r.at.Sub(ended); late != 0 {
					t.Errorf("returned %v after the shutdown, want at once", late)
				}
			}))
		}
	}
}

// watchUntilComplete: WatchShutdown's channel stays open until the
// connection reaches ShutdownComplete, and is the same channel throughout.
func watchUntilComplete(vs []variant, s conn.Settings) func(*testing.T) {
	return each(vs, s, func(t *testing.T, f *fixture) {
		ch := f.c.WatchShutdown()
		synctest.Wait()
		select {
		case <-ch:
			t.Fatalf("closed in %v", f.c.State())
		default:
		}
		if f.end != nil {
			f.end()
		} else {
			f.proceed()
		}
		<-ch
		if st := f.c.State(); st != conn.ShutdownComplete {
			t.Errorf("closed in %v, want ShutdownComplete", st)
		}
		if f.c.WatchShutdown() != ch {
			t.Error("WatchShutdown returned another channel")
		}
	})
}

func TestBehaviour(t *testing.T) {
	dgrams := conn.Settings{DatagramReceiveEnabled: true}
	oneStream := conn.Settings{PeerBidiStreamCount: 1, PeerUniStreamCount: 1}
	none := conn.Settings{}

	table := []struct {
		state conn.State
		op    string
		test  func(*testing.T)
	}{
		// Start
		{conn.Open, "Start", startFromOpen},
		{conn.Open, "Start(port 0)", startRefused(silentHost, 0, "port")},
		{conn.Open, "Start(empty host)", startRefused("", serverPort, "host")},
		{conn.Connecting, "Start", parts(
			part{"waits", waits(inConnecting, none, opStart)},
			part{"the first Start ends with the connection", bubble(func(t *testing.T) {
				f := enterConnectingClient(t, none)
				f.end()
				assertConnError(t, f.c, (<-f.started).err, qerr.ConnectionClosed, 0)
				if st := f.c.State(); st != conn.ShutdownComplete {
					t.Errorf("State = %v", st)
				}
			})},
		)},
		{conn.Connected, "Start", each(inConnected, none, succeeds(opStart))},
		{conn.Shutdown, "Start", lost(inShutdown, none, opStart)},
		{conn.ShutdownComplete, "Start", lost(inComplete, none, opStart)},

		// Accept
		{conn.Open, "Accept", waits(inOpen, none, opAccept)},
		{conn.Connecting, "Accept", waits(inConnecting, none, opAccept)},
		{conn.Connected, "Accept", each(inConnected, none, succeeds(opAccept))},
		{conn.Shutdown, "Accept", lost(inShutdown, none, opAccept)},
		{conn.ShutdownComplete, "Accept", lost(inComplete, none, opAccept)},

		// ReceiveRemoteCertificate
		{conn.Open, "ReceiveRemoteCertificate", waits(inOpen, none, opCert)},
		{conn.Connecting, "ReceiveRemoteCertificate", parts(
			part{"waits", waits(inConnecting, none, opCert)},
			part{"verified", bubble(certificateWhileConnecting)},
		)},
		{conn.Connected, "ReceiveRemoteCertificate", each(inConnected, none, storedCertificate)},
		{conn.Shutdown, "ReceiveRemoteCertificate", each(inShutdown, none, storedCertificate)},
		{conn.ShutdownComplete, "ReceiveRemoteCertificate", each(inComplete, none, storedCertificate)},

		// OpenOutboundStream
		{conn.Open, "OpenOutboundStream", notStarted(inOpen, none, opOpen(stream.Bidirectional, false))},
		{conn.Connecting, "OpenOutboundStream", parts(
			part{"waits", waits(inConnecting, none, opOpen(stream.Bidirectional, false))},
			part{"opens once Connected", each(inConnecting[1:], none, opensOnceConnected)},
		)},
		{conn.Connected, "OpenOutboundStream", parts(
			part{"opens/bidirectional", each(inConnected, none, opens(stream.Bidirectional))},
			part{"opens/unidirectional", each(inConnected, none, opens(stream.Unidirectional))},
			part{"at the limit/failOnBlocked/bidirectional", each(inConnected[:1], oneStream, limitReached(stream.Bidirectional))},
			part{"at the limit/failOnBlocked/unidirectional", each(inConnected[:1], oneStream, limitReached(stream.Unidirectional))},
			part{"at the limit/waits/bidirectional", waits(atLimit(stream.Bidirectional), oneStream, opOpen(stream.Bidirectional, false))},
			part{"at the limit/waits/unidirectional", waits(atLimit(stream.Unidirectional), oneStream, opOpen(stream.Unidirectional, false))},
			part{"at the limit/credit/bidirectional", each(inConnected[:1], oneStream, creditReturns(stream.Bidirectional))},
			part{"at the limit/credit/unidirectional", each(inConnected[:1], oneStream, creditReturns(stream.Unidirectional))},
		)},
		{conn.Shutdown, "OpenOutboundStream", lost(inShutdown, none, opOpen(stream.Bidirectional, false))},
		{conn.ShutdownComplete, "OpenOutboundStream", lost(inComplete, none, opOpen(stream.Bidirectional, false))},

		// OpenSendStream follows OpenOutboundStream.
		{conn.Open, "OpenSendStream", notStarted(inOpen, none, opOpenSend)},
		{conn.Connecting, "OpenSendStream", waits(inConnecting, none, opOpenSend)},
		{conn.Connected, "OpenSendStream", parts(
			part{"opens", each(inConnected, none, sendsMessages)},
			part{"at the limit/waits", waits(atLimit(stream.Unidirectional), oneStream, opOpenSend)},
		)},
		{conn.Shutdown, "OpenSendStream", lost(inShutdown, none, opOpenSend)},
		{conn.ShutdownComplete, "OpenSendStream", lost(inComplete, none, opOpenSend)},

		// AcceptInboundStream
		{conn.Open, "AcceptInboundStream", notStarted(inOpen, none, opAcceptStream)},
		{conn.Connecting, "AcceptInboundStream", waits(inConnecting, none, opAcceptStream)},
		{conn.Connected, "AcceptInboundStream", parts(
			part{"queued", each(inConnected, none, acceptsQueued(stream.Bidirectional))},
			part{"waits", waits(inConnected, none, opAcceptStream)},
		)},
		{conn.Shutdown, "AcceptInboundStream", lost(inShutdown, none, opAcceptStream)},
		{conn.ShutdownComplete, "AcceptInboundStream", lost(inComplete, none, opAcceptStream)},

		// AcceptInboundUniStream
		{conn.Open, "AcceptInboundUniStream", notStarted(inOpen, none, opAcceptUni)},
		{conn.Connecting, "AcceptInboundUniStream", waits(inConnecting, none, opAcceptUni)},
		{conn.Connected, "AcceptInboundUniStream", parts(
			part{"queued", each(inConnected, none, acceptsQueued(stream.Unidirectional))},
			part{"waits", waits(inConnected, none, opAcceptUni)},
		)},
		{conn.Shutdown, "AcceptInboundUniStream", lost(inShutdown, none, opAcceptUni)},
		{conn.ShutdownComplete, "AcceptInboundUniStream", lost(inComplete, none, opAcceptUni)},

		// ReceiveDatagram
		{conn.Open, "ReceiveDatagram", notStarted(inOpen, dgrams, opReceiveDatagram)},
		{conn.Connecting, "ReceiveDatagram", waits(inConnecting, dgrams, opReceiveDatagram)},
		{conn.Connected, "ReceiveDatagram", parts(
			part{"queued", each(inConnected, dgrams, receivesQueued)},
			part{"waits", waits(inConnected, dgrams, opReceiveDatagram)},
			part{"not enabled here", bubble(receiveNotEnabled)},
			part{"full queue drops the oldest", bubble(datagramQueueBound)},
		)},
		{conn.Shutdown, "ReceiveDatagram", lost(inShutdown, dgrams, opReceiveDatagram)},
		{conn.ShutdownComplete, "ReceiveDatagram", lost(inComplete, dgrams, opReceiveDatagram)},

		// SendDatagram
		{conn.Open, "SendDatagram", notStarted(inOpen, dgrams, opSendDatagram)},
		{conn.Connecting, "SendDatagram", notStarted(inConnecting, dgrams, opSendDatagram)},
		{conn.Connected, "SendDatagram", parts(
			part{"sends", each(inConnected, dgrams, sendsDatagram)},
			part{"the peer did not enable datagrams", bubble(sendDeniedByPeer)},
			part{"not enabled here", bubble(sendNotEnabled)},
			part{"sizes", bubble(datagramSizes)},
		)},
		{conn.Shutdown, "SendDatagram", lost(inShutdown, dgrams, opSendDatagram)},
		{conn.ShutdownComplete, "SendDatagram", lost(inComplete, dgrams, opSendDatagram)},

		// Shutdown
		{conn.Open, "Shutdown", notStarted(inOpen, none, opShutdown)},
		{conn.Connecting, "Shutdown", notStarted(inConnecting, none, opShutdown)},
		{conn.Connected, "Shutdown", parts(
			part{"closes with the code", each(inConnected, none, shutsDown)},
			part{"a code QUIC cannot carry", each(inConnected[:1], none, invalidCode)},
		)},
		{conn.Shutdown, "Shutdown", each(inShutdown, none, shutdownAgain)},
		{conn.ShutdownComplete, "Shutdown", each(inComplete, none, shutdownAgain)},

		// ShutdownAndWait
		{conn.Open, "ShutdownAndWait", notStarted(inOpen, none, opShutdownAndWait)},
		{conn.Connecting, "ShutdownAndWait", parts(
			part{"waits", waits(inConnecting, none, opShutdownAndWait)},
			part{"shuts down once Connected", each(inConnecting[1:], none, shutsDownOnceConnected)},
		)},
		{conn.Connected, "ShutdownAndWait", parts(
			part{"closes and waits for ShutdownComplete", each(inConnected, none, shutsDownAndWaits)},
			part{"context ends first", each(inConnected[:1], none, shutdownAndWaitCancelled)},
		)},
		{conn.Shutdown, "ShutdownAndWait", each(inShutdown, none, waitsForComplete)},
		{conn.ShutdownComplete, "ShutdownAndWait", each(inComplete, none, shutdownAndWaitAfter)},

		// WatchShutdown
		{conn.Open, "WatchShutdown", watchUntilComplete(inOpen, none)},
		{conn.Connecting, "WatchShutdown", watchUntilComplete(inConnecting, none)},
		{conn.Connected, "WatchShutdown", watchUntilComplete(inConnected, none)},
		{conn.Shutdown, "WatchShutdown", watchUntilComplete(inShutdown, none)},
		{conn.ShutdownComplete, "WatchShutdown", each(inComplete, none, watchClosed)},

		// The accessors.
		{conn.Open, "Err", each(inOpen, none, noErr)},
		{conn.Connecting, "Err", each(inConnecting, none, noErr)},
		{conn.Connected, "Err", each(inConnected, none, noErr)},
		{conn.Shutdown, "Err", each(inShutdown, none, hasErr)},
		{conn.ShutdownComplete, "Err", each(inComplete, none, hasErr)},
		{conn.Open, "RemoteCertificate", each(inOpen, none, remoteCertificate)},
		{conn.Connecting, "RemoteCertificate", each(inConnecting, none, remoteCertificate)},
		{conn.Connected, "RemoteCertificate", each(inConnected, none, remoteCertificate)},
		{conn.Shutdown, "RemoteCertificate", each(inShutdown, none, remoteCertificate)},
		{conn.ShutdownComplete, "RemoteCertificate", each(inComplete, none, remoteCertificate)},
		{conn.Open, "MaxDatagramSize", each(inOpen, dgrams, maxDatagramSize(false))},
		{conn.Connecting, "MaxDatagramSize", each(inConnecting, dgrams, maxDatagramSize(false))},
		{conn.Connected, "MaxDatagramSize", each(inConnected, dgrams, maxDatagramSize(true))},
		{conn.Shutdown, "MaxDatagramSize", each(inShutdown, dgrams, maxDatagramSize(false))},
		{conn.ShutdownComplete, "MaxDatagramSize", each(inComplete, dgrams, maxDatagramSize(false))},
		{conn.Open, "NegotiatedALPN", each(inOpen, none, negotiatedALPN(""))},
		{conn.Connecting, "NegotiatedALPN", each(inConnecting, none, negotiatedALPN(""))},
		{conn.Connected, "NegotiatedALPN", each(inConnected, none, negotiatedALPN(alpn))},
		{conn.Open, "LocalAddr", notStarted(inOpen, none, opLocalAddr)},
		{conn.Connecting, "LocalAddr", each(inConnecting, none, addresses)},
		{conn.Connected, "LocalAddr", each(inConnected, none, addresses)},
		{conn.Open, "RemoteAddr", notStarted(inOpen, none, opRemoteAddr)},
		{conn.Connecting, "RemoteAddr", each(inConnecting, none, addresses)},
		{conn.Connected, "RemoteAddr", each(inConnected, none, addresses)},
	}
	for _, tt := range table {
		t.Run(tt.state.String()+"/"+tt.op, tt.test)
	}
}

// succeeds: the operation returns nil at once, and the state stays.
func succeeds(op operation) func(t *testing.T, f *fixture) {
	return func(t *testing.T, f *fixture) {
		before := f.c.State()
		if err := atOnce(t, func(ctx context.Context) error { return op(ctx, f) }); err != nil {
			t.Errorf("in %v: %v, want nil", before, err)
		}
		if after := f.c.State(); after != before {
			t.Errorf("State went from %v to %v", before, after)
		}
	}
}

// startFromOpen: Start begins the handshake and waits for it; ending its
// context abandons the handshake, and the connection's shutdown ends it.
func startFromOpen(t *testing.T) {
	for _, end := range []string{"cancel", "deadline", "shutdown"} {
		t.Run(end, bubble(func(t *testing.T) {
			f := enterOpen(t, conn.Settings{})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if end == "deadline" {
				ctx, cancel = context.WithTimeout(context.Background(), time.Second)
				defer cancel()
			}
			deadline, _ := ctx.Deadline()
			done := started(func() error { return opStart(ctx, f) })
			if r, waiting := blocked(done); !waiting {
				t.Fatalf("Start returned %v, want it to wait", r.err)
			}
			if st := f.c.State(); st != conn.Connecting {
				t.Errorf("State during Start = %v, want Connecting", st)
			}
			if f.sock.Stats().Sent == 0 {
				t.Error("Start sent nothing")
			}
			switch end {
			case "cancel":
				cancelled := time.Now()
				cancel()
				if r := <-done; !errors.Is(r.err, context.Canceled) {
					t.Errorf("Start = %v, want context.Canceled", r.err)
				} else if late := r.at.Sub(cancelled); late != 0 {
					t.Errorf("Start returned %v after it was cancelled, want at once", late)
				}
			case "deadline":
				r := <-done
				if !errors.Is(r.err, context.DeadlineExceeded) {
					t.Errorf("Start = %v, want context.DeadlineExceeded", r.err)
				}
				if late := r.at.Sub(deadline); late != 0 {
					t.Errorf("Start returned %v after its deadline", late)
				}
			case "shutdown":
				ended := time.Now()
				f.reg.Close()
				r := <-done
				assertConnError(t, f.c, r.err, qerr.ConnectionClosed, 0)
				if late := r.at.Sub(ended); late != 0 {
					t.Errorf("Start returned %v after the shutdown, want at once", late)
				}
			}
			// An abandoned handshake shuts the connection down.
			<-f.c.WatchShutdown()
			assertReason(t, f.c.Err(), qerr.ConnectionClosed, 0)
		}))
	}
}

// startRefused: Start refuses a target that cannot make a connection with
// a *ConfigError naming the field, before it sends anything; the
// connection stays Open and can be started right afterwards.
func startRefused(host string, port uint16, field string) func(*testing.T) {
	return bubble(func(t *testing.T) {
		f := enterOpen(t, conn.Settings{})
		err := atOnce(t, func(ctx context.Context) error { return f.c.Start(ctx, f.cfg, host, port) })
		var ce *qerr.ConfigError
		var oe *qerr.OpError
		if !errors.As(err, &ce) || ce.Field != field || !errors.As(err, &oe) || oe.Op != "start" {
			t.Fatalf("Start(%q, %d) = %v, want a start *OpError with a ConfigError for %q", host, port, err, field)
		}
		if n := f.sock.Stats().Sent; n != 0 {
			t.Errorf("Start sent %d packets before refusing", n)
		}
		if st := f.c.State(); st != conn.Open {
			t.Errorf("State after the refusal = %v, want Open", st)
		}
		go func() {
			if s, err := f.ln.Accept(context.Background()); err == nil {
				s.Accept(context.Background())
			}
		}()
		if err := f.c.Start(context.Background(), f.cfg, f.env.host, f.env.port); err != nil {
			t.Errorf("Start after the refusal: %v", err)
		}
	})
}

// certificateWhileConnecting: a client has the server's certificate, and
// ReceiveRemoteCertificate returns it, while it is still Connecting: the
// certificate arrives in the server's first flight, a round trip before the
// server confirms the handshake.
func certificateWhileConnecting(t *testing.T) {
	e := newEnv(t, envOptions{net: inMemory, link: conntest.Link{Delay: 10 * time.Millisecond}})
	c := e.client()
	done := started(func() error { return c.Start(context.Background(), e.cfg, e.host, e.port) })
	cert, err := c.ReceiveRemoteCertificate(context.Background())
	st := c.State()
	if err != nil || cert == nil || !bytes.Equal(cert.Raw, e.serverCred.Certificate.Certificate[0]) {
		t.Fatalf("ReceiveRemoteCertificate = %v, %v; want the server's certificate", cert, err)
	}
	if st != conn.Connecting {
		t.Errorf("State when the certificate arrived = %v, want Connecting", st)
	}
	if r := <-done; r.err != nil {
		t.Fatalf("Start: %v", r.err)
	}
}

// storedCertificate: ReceiveRemoteCertificate returns the verified peer
// certificate at once when the connection has one, and else the
// connection's error.
func storedCertificate(t *testing.T, f *fixture) {
	var got []byte
	err := atOnce(t, func(ctx context.Context) error {
		cert, err := f.c.ReceiveRemoteCertificate(ctx)
		if cert != nil {
			got = cert.Raw
		}
		return err
	})
	if f.peerCert == nil {
		assertConnError(t, f.c, err, f.reason, f.code)
		return
	}
	if err != nil || !bytes.Equal(got, f.peerCert) {
		t.Errorf("in %v: %d bytes, %v; want the peer's certificate", f.c.State(), len(got), err)
	}
}

// opensOnceConnected: an open that waited in Connecting opens once the
// handshake completes, and the stream works.
func opensOnceConnected(t *testing.T, f *fixture) {
	done := started(func() error {
		s, err := f.c.OpenOutboundStream(context.Background(), stream.Unidirectional, false)
		if err == nil {
			_, err = s.Write([]byte("after connected"))
			s.Close()
		}
		return err
	})
	if r, waiting := blocked(done); !waiting {
		t.Fatalf("OpenOutboundStream returned in Connecting: %v", r.err)
	}
	f.proceed()
	if err := f.c.Accept(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r := <-done; r.err != nil {
		t.Fatalf("OpenOutboundStream after Connected: %v", r.err)
	}
	if r := <-f.started; r.err != nil {
		t.Fatal(r.err)
	}
	rs, err := f.peer.AcceptInboundUniStream(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(rs); err != nil || string(b) != "after connected" {
		t.Errorf("read %q, %v", b, err)
	}
}

// opens: a stream opens at once, carries bytes to the peer and is counted;
// a unidirectional one cannot be read.
func opens(typ stream.Type) func(t *testing.T, f *fixture) {
	return func(t *testing.T, f *fixture) {
		var s *stream.Stream
		err := atOnce(t, func(ctx context.Context) error {
			var err error
			s, err = f.c.OpenOutboundStream(ctx, typ, false)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		s.Close()
		var r io.Reader
		if typ == stream.Bidirectional {
			ps, err := f.peer.AcceptInboundStream(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			ps.Close()
			r = ps
			if b, err := io.ReadAll(s); err != nil || len(b) != 0 {
				t.Errorf("reading the peer's empty reply: %q, %v", b, err)
			}
		} else {
			ps, err := f.peer.AcceptInboundUniStream(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			r = ps
			if _, err := s.Read(make([]byte, 1)); !errors.Is(err, qerr.ErrClosed) {
				t.Errorf("Read on an outbound unidirectional stream = %v, want ErrClosed", err)
			}
		}
		if b, err := io.ReadAll(r); err != nil || string(b) != "x" {
			t.Errorf("the peer read %q, %v", b, err)
		}
		if n := f.c.Stats().StreamsOpened; n != 1 {
			t.Errorf("StreamsOpened = %d", n)
		}
		if n := f.peer.Stats().StreamsAccepted; n != 1 {
			t.Errorf("the peer's StreamsAccepted = %d", n)
		}
	}
}

// limitReached: at the peer's limit of one stream, an open with
// failOnBlocked fails at once with ErrLimitReached.
func limitReached(typ stream.Type) func(t *testing.T, f *fixture) {
	return func(t *testing.T, f *fixture) {
		if _, err := f.c.OpenOutboundStream(context.Background(), typ, true); err != nil {
			t.Fatal(err)
		}
		err := atOnce(t, func(ctx context.Context) error { return second(f.c.OpenOutboundStream(ctx, typ, true)) })
		if !errors.Is(err, qerr.ErrLimitReached) {
			t.Fatalf("second open with failOnBlocked = %v, want ErrLimitReached", err)
		}
	}
}

// atLimit is a Connected client that has used up the peer's limit of one
// stream of type typ.
func atLimit(typ stream.Type) []variant {
	return []variant{{"client", func(t *testing.T, s conn.Settings) *fixture {
		t.Helper()
		f := enterConnected(t, s)
		if _, err := f.c.OpenOutboundStream(context.Background(), typ, false); err != nil {
			t.Fatal(err)
		}
		return f
	}}}
}

// creditReturns: an open that waits at the limit succeeds once the first
// stream is done on both sides.
func creditReturns(typ stream.Type) func(t *testing.T, f *fixture) {
	return func(t *testing.T, f *fixture) {
		ctx := context.Background()
		first, err := f.c.OpenOutboundStream(ctx, typ, true)
		if err != nil {
			t.Fatal(err)
		}
		done := started(func() error { return second(f.c.OpenOutboundStream(ctx, typ, false)) })
		if r, waiting := blocked(done); !waiting {
			t.Fatalf("second open did not wait: %v", r.err)
		}
		first.Write([]byte("x"))
		first.Close()
		if typ == stream.Bidirectional {
			ps, err := f.peer.AcceptInboundStream(ctx)
			if err != nil {
				t.Fatal(err)
			}
			io.ReadAll(ps)
			ps.Close()
			io.ReadAll(first)
		} else {
			ps, err := f.peer.AcceptInboundUniStream(ctx)
			if err != nil {
				t.Fatal(err)
			}
			io.ReadAll(ps)
		}
		if r := <-done; r.err != nil {
			t.Fatalf("waiting open: %v", r.err)
		}
	}
}

// sendsMessages: a message stream carries messages, empty ones included,
// and the peer reads them up to io.EOF.
func sendsMessages(t *testing.T, f *fixture) {
	ctx := context.Background()
	ss, err := f.c.OpenSendStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	msgs := []string{"one", "", "three"}
	for _, m := range msgs {
		if err := ss.Send(ctx, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	ss.Close()
	rs, err := f.peer.AcceptInboundUniStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mr := stream.NewMessageReader(rs, 0)
	for _, want := range msgs {
		if m, err := mr.ReadMessage(); err != nil || string(m) != want {
			t.Fatalf("ReadMessage = %q, %v; want %q", m, err, want)
		}
	}
	if _, err := mr.ReadMessage(); err != io.EOF {
		t.Fatalf("ReadMessage at the end = %v, want io.EOF", err)
	}
}

// acceptsQueued: a stream the peer opened is handed out at once, with its
// bytes.
func acceptsQueued(typ stream.Type) func(t *testing.T, f *fixture) {
	return func(t *testing.T, f *fixture) {
		ps, err := f.peer.OpenOutboundStream(context.Background(), typ, false)
		if err != nil {
			t.Fatal(err)
		}
		ps.Write([]byte("x"))
		ps.Close()
		synctest.Wait() // the stream has arrived
		var r io.Reader
		err = atOnce(t, func(ctx context.Context) error {
			var err error
			if typ == stream.Bidirectional {
				r, err = f.c.AcceptInboundStream(ctx)
			} else {
				r, err = f.c.AcceptInboundUniStream(ctx)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if b, err := io.ReadAll(r); err != nil || string(b) != "x" {
			t.Errorf("read %q, %v", b, err)
		}
	}
}

// receivesQueued: a datagram that has arrived is returned at once.
func receivesQueued(t *testing.T, f *fixture) {
	if err := f.peer.SendDatagram([]byte("dgram")); err != nil {
		t.Fatal(err)
	}
	synctest.Wait()
	var got []byte
	err := atOnce(t, func(ctx context.Context) error {
		var err error
		got, err = f.c.ReceiveDatagram(ctx)
		return err
	})
	if err != nil || string(got) != "dgram" {
		t.Fatalf("ReceiveDatagram = %q, %v", got, err)
	}
	if n := f.c.Stats().DatagramsReceived; n != 1 {
		t.Errorf("DatagramsReceived = %d", n)
	}
}

// receiveNotEnabled: without DatagramReceiveEnabled here, ReceiveDatagram
// fails at once, saying that this side's Settings do not enable datagrams.
func receiveNotEnabled(t *testing.T) {
	f := enterConnectedWith(t, conn.Settings{}, conn.Settings{DatagramReceiveEnabled: true})
	err := atOnce(t, func(ctx context.Context) error { return second(f.c.ReceiveDatagram(ctx)) })
	if !errors.Is(err, qerr.ErrDatagramDenied) || !strings.Contains(err.Error(), "not enabled in this side's Settings") {
		t.Errorf("ReceiveDatagram = %v, want ErrDatagramDenied saying this side did not enable datagrams", err)
	}
	if strings.Contains(err.Error(), "denied by peer") {
		t.Errorf("ReceiveDatagram = %q: says the peer denied datagrams, which it did not", err)
	}
}

// datagramQueueBound: the receive queue holds DatagramQueueLen datagrams;
// past that the oldest are dropped, and counted.
func datagramQueueBound(t *testing.T) {
	s := conn.Settings{DatagramReceiveEnabled: true, DatagramQueueLen: 4}
	f := enterConnected(t, s)
	const n = 20
	for i := range n {
		if err := f.c.SendDatagram([]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	// Nobody receives: after a millisecond the queue takes the datagrams
	// from quic-go.
	time.Sleep(2 * time.Millisecond)
	synctest.Wait() // every datagram has arrived and been queued or dropped
	st := f.peer.Stats()
	if st.DatagramsReceived != n || st.DatagramsQueued != 4 || st.DatagramsDropped != n-4 {
		t.Fatalf("Stats = %+v, want %d received, 4 queued, %d dropped", st, n, n-4)
	}
	for i := n - 4; i < n; i++ {
		d, err := f.peer.ReceiveDatagram(context.Background())
		if err != nil || len(d) != 1 || d[0] != byte(i) {
			t.Fatalf("ReceiveDatagram = %v, %v; want [%d] (oldest dropped first)", d, err, i)
		}
	}
}

// sendsDatagram: a datagram reaches the peer and is counted on both sides.
func sendsDatagram(t *testing.T, f *fixture) {
	if err := atOnce(t, func(context.Context) error { return f.c.SendDatagram([]byte("dgram")) }); err != nil {
		t.Fatal(err)
	}
	d, err := f.peer.ReceiveDatagram(context.Background())
	if err != nil || string(d) != "dgram" {
		t.Fatalf("the peer received %q, %v", d, err)
	}
	if n := f.c.Stats().DatagramsSent; n != 1 {
		t.Errorf("DatagramsSent = %d", n)
	}
	if n := f.peer.Stats().DatagramsReceived; n != 1 {
		t.Errorf("the peer's DatagramsReceived = %d", n)
	}
}

// sendDeniedByPeer: a peer that did not enable datagrams cannot be sent
// one, and the error says that the peer refused.
func sendDeniedByPeer(t *testing.T) {
	f := enterConnectedWith(t, conn.Settings{DatagramReceiveEnabled: true}, conn.Settings{})
	err := atOnce(t, func(context.Context) error { return f.c.SendDatagram([]byte("x")) })
	if !errors.Is(err, qerr.ErrDatagramDenied) || !strings.Contains(err.Error(), "the peer did not enable datagrams") {
		t.Errorf("SendDatagram = %v, want ErrDatagramDenied saying the peer did not enable datagrams", err)
	}
	if n := f.c.MaxDatagramSize(); n != 0 {
		t.Errorf("MaxDatagramSize = %d, want 0", n)
	}
}

// sendNotEnabled: a side that did not enable datagrams cannot send them
// either (as in quic-go), and the error says that this side's Settings are
// why, not the peer.
func sendNotEnabled(t *testing.T) {
	f := enterConnectedWith(t, conn.Settings{}, conn.Settings{DatagramReceiveEnabled: true})
	err := atOnce(t, func(context.Context) error { return f.c.SendDatagram([]byte("x")) })
	if !errors.Is(err, qerr.ErrDatagramDenied) || !strings.Contains(err.Error(), "not enabled in this side's Settings") {
		t.Errorf("SendDatagram = %v, want ErrDatagramDenied saying this side did not enable datagrams", err)
	}
	if strings.Contains(err.Error(), "denied by peer") {
		t.Errorf("SendDatagram = %q: says the peer denied datagrams, which it did not", err)
	}
	if n := f.c.MaxDatagramSize(); n != 0 {
		t.Errorf("MaxDatagramSize = %d, want 0", n)
	}
}

// datagramSizes: MaxDatagramSize is accepted, one byte more is
// DatagramTooBig with the limit.
func datagramSizes(t *testing.T) {
	f := enterConnected(t, conn.Settings{DatagramReceiveEnabled: true})
	max := f.c.MaxDatagramSize()
	if max < 1000 || max > 1500 {
		t.Fatalf("MaxDatagramSize = %d", max)
	}
	err := f.c.SendDatagram(make([]byte, max+1))
	var tooBig *qerr.DatagramTooBigError
	if !errors.As(err, &tooBig) || !errors.Is(err, qerr.ErrDatagramTooBig) || tooBig.Max != max {
		t.Fatalf("SendDatagram(max+1) = %v, want DatagramTooBigError{Max: %d}", err, max)
	}
	full := bytes.Repeat([]byte{0xd}, max)
	if err := f.c.SendDatagram(full); err != nil {
		t.Fatalf("SendDatagram(max) = %v", err)
	}
	got, err := f.peer.ReceiveDatagram(context.Background())
	if err != nil || !bytes.Equal(got, full) {
		t.Fatalf("ReceiveDatagram = %d bytes, %v", len(got), err)
	}
}

// shutsDown: Shutdown returns at once, the error says this side closed
// with the code, and the peer sees its peer close with it.
func shutsDown(t *testing.T, f *fixture) {
	if err := atOnce(t, func(context.Context) error { return f.c.Shutdown(7) }); err != nil {
		t.Fatal(err)
	}
	if st := f.c.State(); st != conn.Shutdown && st != conn.ShutdownComplete {
		t.Errorf("State after Shutdown = %v", st)
	}
	assertReason(t, f.c.Err(), qerr.ShutdownByLocal, 7)
	<-f.c.WatchShutdown()
	<-f.peer.WatchShutdown()
	assertReason(t, f.c.Err(), qerr.ShutdownByLocal, 7)
	assertReason(t, f.peer.Err(), qerr.ShutdownByPeer, 7)
	var mine, theirs *qerr.ConnectionError
	if errors.As(f.c.Err(), &mine) && mine.Remote {
		t.Error("this side's error says the peer closed")
	}
	if errors.As(f.peer.Err(), &theirs) && !theirs.Remote {
		t.Error("the peer's error does not say that its peer closed")
	}
}

// invalidCode: a code above 2^62-1 is refused and changes nothing.
func invalidCode(t *testing.T, f *fixture) {
	if err := f.c.Shutdown(1 << 62); !errors.Is(err, qerr.ErrInvalidCode) {
		t.Errorf("Shutdown(1<<62) = %v, want ErrInvalidCode", err)
	}
	if st := f.c.State(); st != conn.Connected || f.c.Err() != nil {
		t.Errorf("after the refused code: %v, %v", st, f.c.Err())
	}
}

// shutdownAgain: once the connection is shutting down, Shutdown does
// nothing; the error keeps the first close's reason and code.
func shutdownAgain(t *testing.T, f *fixture) {
	before := f.c.State()
	if err := atOnce(t, func(context.Context) error { return f.c.Shutdown(8) }); err != nil {
		t.Errorf("Shutdown again = %v, want nil", err)
	}
	if err := f.c.Shutdown(1 << 62); !errors.Is(err, qerr.ErrInvalidCode) {
		t.Errorf("Shutdown(1<<62) = %v, want ErrInvalidCode", err)
	}
	assertReason(t, f.c.Err(), f.reason, f.code)
	if after := f.c.State(); after != before {
		t.Errorf("State went from %v to %v", before, after)
	}
}

// shutsDownOnceConnected: ShutdownAndWait in Connecting waits for the
// handshake, then closes as in Connected.
func shutsDownOnceConnected(t *testing.T, f *fixture) {
	done := started(func() error { return f.c.ShutdownAndWait(context.Background(), 5) })
	if r, waiting := blocked(done); !waiting {
		t.Fatalf("ShutdownAndWait returned in Connecting: %v", r.err)
	}
	f.proceed()
	if r := <-done; r.err != nil {
		t.Fatalf("ShutdownAndWait = %v", r.err)
	}
	if st := f.c.State(); st != conn.ShutdownComplete {
		t.Errorf("State = %v", st)
	}
	assertReason(t, f.c.Err(), qerr.ShutdownByLocal, 5)
}

// shutsDownAndWaits: ShutdownAndWait closes at once and waits until the
// close is complete, then returns nil.
func shutsDownAndWaits(t *testing.T, f *fixture) {
	f.sock.hold()
	done := started(func() error { return f.c.ShutdownAndWait(context.Background(), 7) })
	if r, waiting := blocked(done); !waiting {
		t.Fatalf("ShutdownAndWait returned %v with the close held", r.err)
	}
	if st := f.c.State(); st != conn.Shutdown {
		t.Errorf("State while the close is held = %v, want Shutdown", st)
	}
	assertReason(t, f.c.Err(), qerr.ShutdownByLocal, 7)
	f.sock.release()
	if r := <-done; r.err != nil {
		t.Fatalf("ShutdownAndWait = %v", r.err)
	}
	if st := f.c.State(); st != conn.ShutdownComplete {
		t.Errorf("State after ShutdownAndWait = %v", st)
	}
	<-f.peer.WatchShutdown()
	assertReason(t, f.peer.Err(), qerr.ShutdownByPeer, 7)
}

// shutdownAndWaitCancelled: ShutdownAndWait's context ending first ends
// the wait, not the close.
func shutdownAndWaitCancelled(t *testing.T, f *fixture) {
	f.sock.hold()
	ctx, cancel := context.WithCancel(context.Background())
	done := started(func() error { return f.c.ShutdownAndWait(ctx, 7) })
	if r, waiting := blocked(done); !waiting {
		t.Fatalf("ShutdownAndWait returned %v with the close held", r.err)
	}
	cancel()
	if r := <-done; !errors.Is(r.err, context.Canceled) {
		t.Errorf("ShutdownAndWait cancelled = %v, want context.Canceled", r.err)
	}
	if st := f.c.State(); st != conn.Shutdown {
		t.Errorf("State = %v, want Shutdown", st)
	}
	f.sock.release()
	<-f.c.WatchShutdown()
	assertReason(t, f.c.Err(), qerr.ShutdownByLocal, 7)
}

// waitsForComplete: in Shutdown, ShutdownAndWait waits for the close to
// complete, then reports that this side closed.
func waitsForComplete(t *testing.T, f *fixture) {
	done := started(func() error { return f.c.ShutdownAndWait(context.Background(), 8) })
	if r, waiting := blocked(done); !waiting {
		t.Fatalf("ShutdownAndWait returned %v with the close held", r.err)
	}
	f.proceed()
	if r := <-done; r.err != nil {
		t.Errorf("ShutdownAndWait = %v, want nil", r.err)
	}
	assertReason(t, f.c.Err(), qerr.ShutdownByLocal, 7)
}

// shutdownAndWaitAfter: after ShutdownComplete, ShutdownAndWait returns at
// once: nil if this side shut the connection down, else its error.
func shutdownAndWaitAfter(t *testing.T, f *fixture) {
	err := atOnce(t, func(ctx context.Context) error { return f.c.ShutdownAndWait(ctx, 8) })
	if f.local {
		if err != nil {
			t.Errorf("ShutdownAndWait after a local shutdown = %v, want nil", err)
		}
		return
	}
	assertConnError(t, f.c, err, f.reason, f.code)
}

// watchClosed: after ShutdownComplete, WatchShutdown's channel is closed.
func watchClosed(t *testing.T, f *fixture) {
	select {
	case <-f.c.WatchShutdown():
	default:
		t.Error("WatchShutdown not closed in ShutdownComplete")
	}
}

func noErr(t *testing.T, f *fixture) {
	if err := f.c.Err(); err != nil {
		t.Errorf("Err in %v = %v, want nil", f.c.State(), err)
	}
}

// hasErr: the error says why the connection closed and who closed it.
func hasErr(t *testing.T, f *fixture) {
	assertReason(t, f.c.Err(), f.reason, f.code)
	var ce *qerr.ConnectionError
	if errors.As(f.c.Err(), &ce) && ce.Remote != (f.reason == qerr.ShutdownByPeer) {
		t.Errorf("Err %v: Remote = %v", ce, ce.Remote)
	}
}

// remoteCertificate: the peer's certificate once verified, else nil.
func remoteCertificate(t *testing.T, f *fixture) {
	got := f.c.RemoteCertificate()
	var want []byte
	if f.c.State() >= conn.Connected {
		want = f.peerCert
	}
	switch {
	case want == nil && got != nil:
		t.Errorf("RemoteCertificate in %v = %v, want nil", f.c.State(), got.Subject)
	case want != nil && (got == nil || !bytes.Equal(got.Raw, want)):
		t.Errorf("RemoteCertificate in %v is not the peer's", f.c.State())
	}
}

// maxDatagramSize: known only while Connected with datagrams on both sides.
func maxDatagramSize(known bool) func(t *testing.T, f *fixture) {
	return func(t *testing.T, f *fixture) {
		n := f.c.MaxDatagramSize()
		if known && n <= 0 || !known && n != 0 {
			t.Errorf("MaxDatagramSize in %v = %d", f.c.State(), n)
		}
	}
}

func negotiatedALPN(want string) func(t *testing.T, f *fixture) {
	return func(t *testing.T, f *fixture) {
		if got := f.c.NegotiatedALPN(); got != want {
			t.Errorf("NegotiatedALPN in %v = %q, want %q", f.c.State(), got, want)
		}
	}
}

// addresses: from Connecting on, LocalAddr is the connection's socket and
// RemoteAddr the peer's (for a client, the address it dials).
func addresses(t *testing.T, f *fixture) {
	la, err := f.c.LocalAddr()
	if err != nil || la.String() != f.sock.LocalAddr().String() {
		t.Errorf("LocalAddr in %v = %v, %v; want %v", f.c.State(), la, err, f.sock.LocalAddr())
	}
	var want string
	switch {
	case f.sock == f.serverSock:
		pa, _ := f.peer.LocalAddr()
		want = pa.String()
	case f.peer != nil:
		want = f.ln.Addr().String()
	default:
		want = silentHost + ":443"
	}
	if ra, err := f.c.RemoteAddr(); err != nil || ra.String() != want {
		t.Errorf("RemoteAddr in %v = %v, %v; want %v", f.c.State(), ra, err, want)
	}
}
