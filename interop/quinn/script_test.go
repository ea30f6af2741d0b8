package quinn_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/quicconn/quicconn/conn"
	qerr "github.com/quicconn/quicconn/errors"
	"github.com/quicconn/quicconn/stream"
)

// The script both sides run, in quicconn here and in quinn in src/script.rs
// (whose documentation describes it step by step).
const (
	alpn       = "quicconn-interop/1"
	echoCmd    = 'E'
	closeCmd   = 'C'
	bigSize    = 1 << 20
	parallel   = 8
	smallSize  = 64 << 10
	nMessages  = 100
	nDatagrams = 10
)

// pattern is deterministic filler, different for each seed.
func pattern(n, seed int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*31 ^ seed*131 ^ i>>8)
	}
	return b
}

// messages are the driver's: 100, of 0 to 20010 bytes, the first empty.
func messages() [][]byte {
	m := make([][]byte, nMessages)
	for i := range m {
		m[i] = pattern(i*997%20011, i)
	}
	return m
}

// closing says how the driver ends the connection: by closing it itself
// (byDriver), or by asking the responder to close it with code and reason.
type closing struct {
	byDriver bool
	code     uint64
	reason   string
}

// deadline applies ctx's deadline to s, so that no read (or write) outlives
// the test's bound.
func deadline(ctx context.Context, s interface{ SetReadDeadline(time.Time) error }) {
	if d, ok := ctx.Deadline(); ok {
		_ = s.SetReadDeadline(d)
		if w, ok := s.(interface{ SetWriteDeadline(time.Time) error }); ok {
			_ = w.SetWriteDeadline(d)
		}
	}
}

func echo(ctx context.Context, c *conn.Connection, payload []byte) error {
	s, err := c.OpenOutboundStream(ctx, stream.Bidirectional, false)
	if err != nil {
		return err
	}
	deadline(ctx, s)
	werr := make(chan error, 1)
	go func() {
		_, err := s.WriteChunks([][]byte{{echoCmd}, payload}, true)
		werr <- err
	}()
	got, rerr := io.ReadAll(s)
	if err := errors.Join(<-werr, rerr); err != nil {
		return err
	}
	if !bytes.Equal(got, payload) {
		return fmt.Errorf("echo of %d bytes came back as %d different bytes", len(payload), len(got))
	}
	return nil
}

func sendMessages(ctx context.Context, c *conn.Connection, msgs [][]byte) error {
	ss, err := c.OpenSendStream(ctx)
	if err != nil {
		return err
	}
	for _, m := range msgs {
		if err := ss.Send(ctx, m); err != nil {
			return err
		}
	}
	return ss.Close()
}

func readMessages(ctx context.Context, rs *stream.ReadStream) ([][]byte, error) {
	deadline(ctx, rs)
	r := stream.NewMessageReader(rs, 0)
	var out [][]byte
	for {
		m, err := r.ReadMessage()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, bytes.Clone(m))
	}
}

// datagrams sends the driver's datagrams and waits for their echoes,
// resending the missing ones for at most 5 rounds of 500 ms; it returns the
// number of rounds.
func datagrams(ctx context.Context, c *conn.Connection) (int, error) {
	max := c.MaxDatagramSize()
	if max == 0 {
		return 0, errors.New("datagrams not enabled on both sides")
	}
	span := min(max, 1200) - 2
	sent := make([][]byte, nDatagrams)
	for i := range sent {
		sent[i] = pattern(2+i*97%span, i)
		sent[i][0], sent[i][1] = 'D', byte(i)
	}
	echoed := make([]bool, nDatagrams)
	missing := nDatagrams
	for round := 1; round <= 5; round++ {
		for i, d := range sent {
			if !echoed[i] {
				if err := c.SendDatagram(d); err != nil {
					return 0, fmt.Errorf("sending datagram %d: %w", i, err)
				}
			}
		}
		rctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		for missing > 0 {
			d, err := c.ReceiveDatagram(rctx)
			if err != nil {
				if rctx.Err() != nil && ctx.Err() == nil {
					break // resend what is missing
				}
				cancel()
				return 0, err
			}
			i := nDatagrams
			if len(d) > 1 {
				i = int(d[1])
			}
			if i >= nDatagrams || !bytes.Equal(d, sent[i]) {
				cancel()
				return 0, fmt.Errorf("echoed datagram of %d bytes matches none sent", len(d))
			}
			if !echoed[i] {
				echoed[i] = true
				missing--
			}
		}
		cancel()
		if missing == 0 {
			return round, nil
		}
	}
	return 0, fmt.Errorf("%d datagrams not echoed after 5 rounds", missing)
}

// drive runs the driver's side of the script on a Connected connection.
func drive(ctx context.Context, c *conn.Connection, cl closing) error {
	if err := echo(ctx, c, pattern(bigSize, 1)); err != nil {
		return fmt.Errorf("echo: %w", err)
	}
	var wg sync.WaitGroup
	errs := make([]error, parallel)
	for i := range parallel {
		wg.Go(func() { errs[i] = echo(ctx, c, pattern(smallSize, 100+i)) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("parallel echo: %w", err)
	}

	msgs := messages()
	if err := sendMessages(ctx, c, msgs); err != nil {
		return fmt.Errorf("messages: sending: %w", err)
	}
	rs, err := c.AcceptInboundUniStream(ctx)
	if err != nil {
		return fmt.Errorf("messages: accepting the reply stream: %w", err)
	}
	got, err := readMessages(ctx, rs)
	if err != nil {
		return fmt.Errorf("messages: reading the reply: %w", err)
	}
	if len(got) != len(msgs) {
		return fmt.Errorf("messages: %d came back, want %d", len(got), len(msgs))
	}
	for i := range msgs {
		if !bytes.Equal(got[i], msgs[i]) {
			return fmt.Errorf("messages: message %d came back as %d different bytes", i, len(got[i]))
		}
	}

	if _, err := datagrams(ctx, c); err != nil {
		return fmt.Errorf("datagrams: %w", err)
	}

	if cl.byDriver {
		if err := c.ShutdownAndWait(ctx, cl.code); err != nil {
			return fmt.Errorf("close: %w", err)
		}
		return nil
	}
	s, err := c.OpenOutboundStream(ctx, stream.Bidirectional, false)
	if err != nil {
		return fmt.Errorf("close: %w", err)
	}
	cmd := binary.BigEndian.AppendUint64([]byte{closeCmd}, cl.code)
	// The responder may close the connection as soon as the command is
	// in, before the write has returned.
	if _, err := s.WriteChunks([][]byte{cmd, []byte(cl.reason)}, true); err != nil && !errors.Is(err, qerr.ErrConnectionLost) {
		return fmt.Errorf("close: sending the command: %w", err)
	}
	select {
	case <-c.WatchShutdown():
	case <-ctx.Done():
		return fmt.Errorf("close: waiting for the responder to close: %w", ctx.Err())
	}
	return wantPeerClose(c, cl.code, cl.reason)
}

// wantPeerClose checks that the peer closed c with code and reason.
func wantPeerClose(c *conn.Connection, code uint64, reason string) error {
	var ce *qerr.ConnectionError
	if !errors.As(c.Err(), &ce) || ce.Reason != qerr.ShutdownByPeer || ce.Code != code || ce.Message != reason {
		return fmt.Errorf("connection ended with %v; want shutdown by peer, code 0x%x, reason %q", c.Err(), code, reason)
	}
	return nil
}

// respond runs the responder's side of the script until the connection
// reaches ShutdownComplete (or ctx ends), and returns what failed.
func respond(ctx context.Context, c *conn.Connection) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	fail := func(what string, err error) {
		// Errors caused by the connection's end are not the script's.
		if err != nil && c.Err() == nil {
			mu.Lock()
			errs = append(errs, fmt.Errorf("%s: %w", what, err))
			mu.Unlock()
		}
	}
	wg.Go(func() {
		for {
			s, err := c.AcceptInboundStream(ctx)
			if err != nil {
				return
			}
			wg.Go(func() { fail("stream", respondBidi(ctx, c, s)) })
		}
	})
	wg.Go(func() {
		for {
			rs, err := c.AcceptInboundUniStream(ctx)
			if err != nil {
				return
			}
			wg.Go(func() {
				msgs, err := readMessages(ctx, rs)
				if err == nil {
					err = sendMessages(ctx, c, msgs)
				}
				fail("messages", err)
			})
		}
	})
	wg.Go(func() {
		for {
			d, err := c.ReceiveDatagram(ctx)
			if err != nil {
				return
			}
			fail("datagram", c.SendDatagram(d))
		}
	})
	select {
	case <-c.WatchShutdown():
	case <-ctx.Done():
		fail("waiting for the end of the connection", ctx.Err())
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	return errors.Join(errs...)
}

func respondBidi(ctx context.Context, c *conn.Connection, s *stream.Stream) error {
	deadline(ctx, s)
	var cmd [1]byte
	if _, err := io.ReadFull(s, cmd[:]); err != nil {
		return fmt.Errorf("reading the command: %w", err)
	}
	switch cmd[0] {
	case echoCmd:
		if _, err := io.Copy(s, s); err != nil {
			return err
		}
		return s.Close()
	case closeCmd:
		rest, err := io.ReadAll(io.LimitReader(s, 8+1024))
		if err != nil {
			return err
		}
		if len(rest) < 8 {
			return fmt.Errorf("close command of %d bytes", len(rest))
		}
		// quicconn closes without a reason phrase: the peer expects none.
		return c.Shutdown(binary.BigEndian.Uint64(rest))
	}
	return fmt.Errorf("unknown command 0x%02x", cmd[0])
}
