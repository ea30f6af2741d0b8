package reliability_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"github.com/quicconn/quicconn/conn"
	"github.com/quicconn/quicconn/conntest"
	qerr "github.com/quicconn/quicconn/errors"
	"github.com/quicconn/quicconn/stream"
)

// cancelEnv is one cell's world: a client and a server in registrations of
// their own (so that closing one registration is a local event for one side
// only), joined by a pipe.
type cancelEnv struct {
	t              *testing.T
	regC, regS     *conn.Registration
	a, b           *conntest.PacketConn
	ln             *conn.Listener
	cfg            *conn.Configuration
	client, server *conn.Connection
	started        chan error // the client's Start, when the env is stalled
}

// handshake says how far the env's handshake gets.
type handshake int

const (
	connected     handshake = iota // both sides Connected
	clientStalled                  // the pipe is cut before the client starts: Start waits
	serverStalled                  // cut after the server's first flight: the server connection waits
)

func newCancelEnv(t *testing.T, hs handshake) *cancelEnv {
	t.Helper()
	e := &cancelEnv{t: t}
	var err error
	e.cfg, err = conn.NewConfiguration([]string{alpn}, conn.Settings{
		PeerBidiStreamCount: 1, PeerUniStreamCount: 1, DatagramReceiveEnabled: true,
		StreamReceiveWindow: 16 << 10, ConnectionReceiveWindow: 32 << 10,
		HandshakeTimeout: time.Minute, IdleTimeout: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	sc, cc := creds(t)
	e.a, e.b = conntest.NewPipe(conntest.Link{})
	e.regC, e.regS = conn.NewRegistration("client"), conn.NewRegistration("server")
	t.Cleanup(func() {
		e.regC.Close()
		e.regS.Close()
		e.a.Close()
		e.b.Close()
	})
	var serverPC net.PacketConn = e.b
	if hs == serverStalled {
		serverPC = &cutOnFlight{PacketConn: e.b}
	}
	if e.ln, err = conn.Listen(e.regS, "", e.cfg, sc, conn.WithPacketConn(serverPC), conn.WithLogger(discard)); err != nil {
		t.Fatal(err)
	}
	if e.client, err = conn.New(e.regC, cc, conn.WithPacketConn(e.a), conn.WithLogger(discard)); err != nil {
		t.Fatal(err)
	}
	if hs == clientStalled {
		e.a.Partition(true)
		return e
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e.started = make(chan error, 1)
	go func() { e.started <- e.client.Start(context.Background(), e.cfg, "127.0.0.2", 1) }()
	if e.server, err = e.ln.Accept(ctx); err != nil {
		t.Fatal(err)
	}
	if hs == connected {
		if err := e.server.Accept(ctx); err != nil {
			t.Fatal(err)
		}
		if err := <-e.started; err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// A trigger ends a blocked call. Each gets the env and the context it made
// for the call (and its cancel); it returns when the event has happened.
type trigger struct {
	name string
	// ctx makes the call's context; the deadline trigger sets one.
	ctx  func() (context.Context, context.CancelFunc)
	fire func(e *cancelEnv, cancel context.CancelFunc, side *conn.Connection, reg *conn.Registration)
}

const deadlineAfter = 150 * time.Millisecond

var (
	ctxCancel = trigger{"context canceled",
		func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) },
		func(_ *cancelEnv, cancel context.CancelFunc, _ *conn.Connection, _ *conn.Registration) { cancel() }}
	ctxDeadline = trigger{"context deadline",
		func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), deadlineAfter)
		},
		nil} // fires by itself
	localShutdown = trigger{"local Shutdown", nil,
		func(e *cancelEnv, _ context.CancelFunc, side *conn.Connection, _ *conn.Registration) {
			if err := side.Shutdown(7); err != nil {
				e.t.Errorf("Shutdown: %v", err)
			}
		}}
	peerShutdown = trigger{"peer Shutdown", nil,
		func(e *cancelEnv, _ context.CancelFunc, side *conn.Connection, _ *conn.Registration) {
			peer := e.server
			if side == e.server {
				peer = e.client
			}
			if err := peer.Shutdown(9); err != nil {
				e.t.Errorf("peer Shutdown: %v", err)
			}
		}}
	regClose = trigger{"Registration.Close", nil,
		func(_ *cancelEnv, _ context.CancelFunc, _ *conn.Connection, reg *conn.Registration) { go reg.Close() }}
	listenerClose = trigger{"Listener.Close", nil,
		func(e *cancelEnv, _ context.CancelFunc, _ *conn.Connection, _ *conn.Registration) { e.ln.Close() }}
)

// Expected outcomes.
type outcome struct {
	name  string
	check func(err error) error
}

func isErr(target error) outcome {
	return outcome{target.Error(), func(err error) error {
		if !errors.Is(err, target) {
			return fmt.Errorf("err = %v, want %v", err, target)
		}
		return nil
	}}
}

func lost(r qerr.Reason, code uint64) outcome {
	return outcome{fmt.Sprintf("ConnectionLost %v", r), func(err error) error {
		var ce *qerr.ConnectionError
		if !errors.Is(err, qerr.ErrConnectionLost) || !errors.As(err, &ce) {
			return fmt.Errorf("err = %v, want ConnectionLost (%v)", err, r)
		}
		if ce.Reason != r || ce.Code != code {
			return fmt.Errorf("err = %v: reason %v code %d, want %v code %d", err, ce.Reason, ce.Code, r, code)
		}
		return nil
	}}
}

var returnsNil = outcome{"nil", func(err error) error {
	if err != nil {
		return fmt.Errorf("err = %v, want nil", err)
	}
	return nil
}}

// blockingCall is one blocking operation: the env it needs, which side it
// runs on, and a setup that returns the call itself.
type blockingCall struct {
	name  string
	hs    handshake
	side  string // "client" or "server": whose Shutdown is local, whose registration
	setup func(t *testing.T, e *cancelEnv) func(ctx context.Context) error
}

var blockingCalls = map[string]blockingCall{
	"Start": {"Start", clientStalled, "client", func(t *testing.T, e *cancelEnv) func(context.Context) error {
		return func(ctx context.Context) error { return e.client.Start(ctx, e.cfg, "127.0.0.2", 1) }
	}},
	"Accept": {"Accept", serverStalled, "server", func(t *testing.T, e *cancelEnv) func(context.Context) error {
		return e.server.Accept
	}},
	"ReceiveRemoteCertificate": {"ReceiveRemoteCertificate", serverStalled, "server", func(t *testing.T, e *cancelEnv) func(context.Context) error {
		return func(ctx context.Context) error { _, err := e.server.ReceiveRemoteCertificate(ctx); return err }
	}},
	"ShutdownAndWait while connecting": {"ShutdownAndWait while connecting", serverStalled, "server", func(t *testing.T, e *cancelEnv) func(context.Context) error {
		return func(ctx context.Context) error { return e.server.ShutdownAndWait(ctx, 5) }
	}},
	"OpenOutboundStream at the limit": {"OpenOutboundStream at the limit", connected, "client", func(t *testing.T, e *cancelEnv) func(context.Context) error {
		if _, err := e.client.OpenOutboundStream(context.Background(), stream.Bidirectional, true); err != nil {
			t.Fatal(err)
		}
		return func(ctx context.Context) error {
			_, err := e.client.OpenOutboundStream(ctx, stream.Bidirectional, false)
			return err
		}
	}},
	"OpenSendStream at the limit": {"OpenSendStream at the limit", connected, "client", func(t *testing.T, e *cancelEnv) func(context.Context) error {
		if _, err := e.client.OpenSendStream(context.Background()); err != nil {
			t.Fatal(err)
		}
		return func(ctx context.Context) error { _, err := e.client.OpenSendStream(ctx); return err }
	}},
	"AcceptInboundStream": {"AcceptInboundStream", connected, "client", func(t *testing.T, e *cancelEnv) func(context.Context) error {
		return func(ctx context.Context) error { _, err := e.client.AcceptInboundStream(ctx); return err }
	}},
	"AcceptInboundUniStream": {"AcceptInboundUniStream", connected, "client", func(t *testing.T, e *cancelEnv) func(context.Context) error {
		return func(ctx context.Context) error { _, err := e.client.AcceptInboundUniStream(ctx); return err }
	}},
	"ReceiveDatagram": {"ReceiveDatagram", connected, "client", func(t *testing.T, e *cancelEnv) func(context.Context) error {
		return func(ctx context.Context) error { _, err := e.client.ReceiveDatagram(ctx); return err }
	}},
	"Listener.Accept": {"Listener.Accept", connected, "server", func(t *testing.T, e *cancelEnv) func(context.Context) error {
		return func(ctx context.Context) error { _, err := e.ln.Accept(ctx); return err }
	}},
	"Registration.WaitIdle": {"Registration.WaitIdle", connected, "client", func(t *testing.T, e *cancelEnv) func(context.Context) error {
		return e.regC.WaitIdle
	}},
	"stream ReadChunk": {"stream ReadChunk", connected, "client", func(t *testing.T, e *cancelEnv) func(context.Context) error {
		s, err := e.client.OpenOutboundStream(context.Background(), stream.Bidirectional, true)
		if err != nil {
			t.Fatal(err)
		}
		return func(ctx context.Context) error { _, err := s.ReadChunk(ctx); return err }
	}},
	"SendStream.Send blocked by flow control": {"SendStream.Send blocked by flow control", connected, "client", func(t *testing.T, e *cancelEnv) func(context.Context) error {
		s, err := e.client.OpenSendStream(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return func(ctx context.Context) error { return s.Send(ctx, make([]byte, 1<<20)) }
	}},
}

// messageReaderCall is MessageReader.ReadMessage on a stream that carries
// nothing; it has no context, so its deadline is the stream's read deadline.
func messageReaderCall(t *testing.T, e *cancelEnv, deadline time.Time) func(context.Context) error {
	s, err := e.client.OpenOutboundStream(context.Background(), stream.Bidirectional, true)
	if err != nil {
		t.Fatal(err)
	}
	if !deadline.IsZero() {
		s.SetReadDeadline(deadline)
	}
	mr := stream.NewMessageReader(s, 0)
	return func(context.Context) error { _, err := mr.ReadMessage(); return err }
}

// TestBlockingCallsReturnPromptly is the cancellation table: every blocking
// call × every event that must end it. Each cell checks that the call was
// blocked, that it returns within 100 ms of the event, and with the
// documented error. Cells that cannot happen are absent: Shutdown of a
// Connecting connection is ErrNotStarted by design (its handshake is
// abandoned through Start's context or its registration), and a stalled
// handshake has no peer that could shut it down.
func TestBlockingCallsReturnPromptly(t *testing.T) {
	const bound = 100 * time.Millisecond
	canceled, deadline := isErr(context.Canceled), isErr(context.DeadlineExceeded)
	byLocal, byPeer, closed := lost(qerr.ShutdownByLocal, 7), lost(qerr.ShutdownByPeer, 9), lost(qerr.ConnectionClosed, 0)
	netClosed := isErr(net.ErrClosed)
	type cell struct {
		call    string
		trigger trigger
		want    outcome
	}
	var cells []cell
	for _, c := range []string{"Start", "Accept", "ReceiveRemoteCertificate", "ShutdownAndWait while connecting"} {
		cells = append(cells, cell{c, ctxCancel, canceled}, cell{c, ctxDeadline, deadline}, cell{c, regClose, closed})
	}
	for _, c := range []string{"OpenOutboundStream at the limit", "OpenSendStream at the limit", "AcceptInboundStream",
		"AcceptInboundUniStream", "ReceiveDatagram", "stream ReadChunk", "SendStream.Send blocked by flow control"} {
		cells = append(cells, cell{c, ctxCancel, canceled}, cell{c, ctxDeadline, deadline},
			cell{c, localShutdown, byLocal}, cell{c, peerShutdown, byPeer}, cell{c, regClose, closed})
	}
	cells = append(cells,
		cell{"Listener.Accept", ctxCancel, canceled}, cell{"Listener.Accept", ctxDeadline, deadline},
		cell{"Listener.Accept", listenerClose, netClosed}, cell{"Listener.Accept", regClose, netClosed},
		cell{"Registration.WaitIdle", ctxCancel, canceled}, cell{"Registration.WaitIdle", ctxDeadline, deadline},
		cell{"Registration.WaitIdle", localShutdown, returnsNil}, cell{"Registration.WaitIdle", peerShutdown, returnsNil},
		cell{"Registration.WaitIdle", regClose, returnsNil},
	)
	type mrCell struct {
		trigger trigger
		want    outcome
	}
	mrCells := []mrCell{
		{ctxDeadline, isErr(os.ErrDeadlineExceeded)}, // the stream's read deadline
		{localShutdown, byLocal}, {peerShutdown, byPeer}, {regClose, closed},
	}

	var worst time.Duration
	run := func(t *testing.T, hs handshake, side string, setup func(t *testing.T, e *cancelEnv) func(context.Context) error, tr trigger, want outcome, mrDeadline bool) {
		e := newCancelEnv(t, hs)
		var fn func(context.Context) error
		if mrDeadline {
			fn = messageReaderCall(t, e, time.Now().Add(deadlineAfter))
		} else {
			fn = setup(t, e)
		}
		if hs == serverStalled && e.server == nil {
			t.Fatal("no server connection")
		}
		ctx, cancel := context.Background(), context.CancelFunc(func() {})
		if tr.ctx != nil {
			ctx, cancel = tr.ctx()
		}
		defer cancel()
		begin := time.Now()
		type result struct {
			err error
			at  time.Time
		}
		done := make(chan result, 1)
		go func() {
			err := fn(ctx)
			done <- result{err, time.Now()}
		}()
		time.Sleep(deadlineAfter / 3)
		select {
		case r := <-done:
			t.Fatalf("call returned %v before the event", r.err)
		default:
		}
		var fired time.Time
		if tr.fire != nil {
			sideConn, reg := e.client, e.regC
			if side == "server" {
				sideConn, reg = e.server, e.regS
			}
			fired = time.Now()
			tr.fire(e, cancel, sideConn, reg)
		} else {
			fired = begin.Add(deadlineAfter)
		}
		select {
		case r := <-done:
			lat := r.at.Sub(fired)
			if lat > worst {
				worst = lat
			}
			if lat > bound {
				t.Errorf("returned %v after the event, want within %v", lat, bound)
			}
			if err := want.check(r.err); err != nil {
				t.Error(err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("still blocked 5s after the event")
		}
	}
	for _, c := range cells {
		bc := blockingCalls[c.call]
		t.Run(fmt.Sprintf("%s/%s returns %s", c.call, c.trigger.name, c.want.name), func(t *testing.T) {
			run(t, bc.hs, bc.side, bc.setup, c.trigger, c.want, false)
		})
	}
	for _, c := range mrCells {
		name := c.trigger.name
		if c.trigger.ctx != nil {
			name = "stream read deadline"
		}
		t.Run(fmt.Sprintf("MessageReader on a blocked stream/%s returns %s", name, c.want.name), func(t *testing.T) {
			run(t, connected, "client", func(t *testing.T, e *cancelEnv) func(context.Context) error {
				return messageReaderCall(t, e, time.Time{})
			}, trigger{c.trigger.name, nil, c.trigger.fire}, c.want, c.trigger.fire == nil)
		})
	}
	t.Logf("worst latency from event to return: %v", worst)
}
