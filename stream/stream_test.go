package stream_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"go.uber.org/goleak"

	qerr "github.com/quicconn/quicconn/errors"
	"github.com/quicconn/quicconn/stream"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// wantOp checks that err is an *qerr.OpError naming op.
func wantOp(t testing.TB, err error, op string) {
	t.Helper()
	oe, ok := err.(*qerr.OpError)
	if !ok {
		t.Fatalf("error %v (%T) is not a *qerr.OpError", err, err)
	}
	if oe.Op != op {
		t.Errorf("Op = %q, want %q (error: %v)", oe.Op, op, err)
	}
}

// wantStreamError checks that err is an OpError for op around a
// *qerr.StreamError with the given fields.
func wantStreamError(t testing.TB, err error, op string, kind qerr.StreamErrorKind, remote bool, code uint64) {
	t.Helper()
	wantOp(t, err, op)
	se, ok := errors.AsType[*qerr.StreamError](err)
	if !ok {
		t.Fatalf("error %v is not a *qerr.StreamError", err)
	}
	if se.Kind != kind || se.Remote != remote || se.Code != code {
		t.Errorf("StreamError = {Kind:%v Remote:%v Code:%d}, want {Kind:%v Remote:%v Code:%d}",
			se.Kind, se.Remote, se.Code, kind, remote, code)
	}
	if _, ok := errors.AsType[*quic.StreamError](err); !ok {
		t.Errorf("quic-go's *StreamError is not reachable from %v", err)
	}
}

func TestEchoBidirectional(t *testing.T) {
	c, s := newConnPair(t, nil)
	cq, sq := openBidi(t, c, s)
	client, server := stream.NewStream(cq), stream.NewStream(sq)

	if client.ID() != int64(cq.StreamID()) || server.ID() != client.ID() {
		t.Errorf("IDs = %d, %d; want %d", client.ID(), server.ID(), cq.StreamID())
	}
	if client.Type() != stream.Bidirectional {
		t.Errorf("Type = %v, want bidirectional", client.Type())
	}

	msg := pattern(100 << 10)
	go func() {
		// The server echoes until the client's FIN, then finishes too.
		if _, err := io.Copy(server, server); err != nil {
			t.Errorf("server copy: %v", err)
		}
		if err := server.Close(); err != nil {
			t.Errorf("server close: %v", err)
		}
	}()
	go func() {
		if _, err := client.Write(msg); err != nil {
			t.Errorf("client write: %v", err)
		}
		if err := client.Close(); err != nil {
			t.Errorf("client close: %v", err)
		}
	}()
	got, err := io.ReadAll(client)
	if err != nil {
		t.Fatalf("client read: %v", err)
	}
	if !bytes.Equal(got, msg) {
		t.Errorf("echo returned %d bytes, want the %d sent", len(got), len(msg))
	}
}

func TestWriteChunks(t *testing.T) {
	c, s := newConnPair(t, nil)
	cq, sq := openBidi(t, c, s)
	client, server := stream.NewStream(cq), stream.NewStream(sq)

	chunks := [][]byte{[]byte("alpha "), nil, []byte("beta "), pattern(50 << 10), []byte(" gamma")}
	var want []byte
	for _, c := range chunks {
		want = append(want, c...)
	}
	n, err := client.WriteChunks(chunks, true)
	if err != nil || n != len(want) {
		t.Fatalf("WriteChunks = %d, %v; want %d, nil", n, err, len(want))
	}
	got, err := io.ReadAll(server)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("peer read %d bytes, not the %d written", len(got), len(want))
	}

	// fin already sent: more chunks are a write after Close.
	if _, err := client.WriteChunks([][]byte{[]byte("late")}, false); !errors.Is(err, qerr.ErrFinished) {
		t.Errorf("WriteChunks after fin = %v, want ErrFinished", err)
	}
}

func TestWriteChunksWithoutFinThenFin(t *testing.T) {
	c, s := newConnPair(t, nil)
	cq, sq := openBidi(t, c, s)
	client, server := stream.NewStream(cq), stream.NewStream(sq)

	if n, err := client.WriteChunks([][]byte{[]byte("a"), []byte("b")}, false); n != 2 || err != nil {
		t.Fatalf("WriteChunks = %d, %v", n, err)
	}
	if n, err := client.WriteChunks(nil, true); n != 0 || err != nil {
		t.Fatalf("WriteChunks(nil, fin) = %d, %v", n, err)
	}
	got, err := io.ReadAll(server)
	if err != nil || string(got) != "ab" {
		t.Errorf("peer read %q, %v; want \"ab\", nil", got, err)
	}
}

func TestReadChunkUntilEOF(t *testing.T) {
	c, s := newConnPair(t, nil)
	cq, sq := openBidi(t, c, s)
	client, server := stream.NewStream(cq), stream.NewStream(sq)

	want := pattern(300 << 10)
	go func() {
		client.Write(want)
		client.Close()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	var got []byte
	for {
		chunk, err := server.ReadChunk(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("ReadChunk: %v", err)
		}
		if len(chunk) == 0 || len(chunk) > stream.MaxChunkSize {
			t.Fatalf("chunk of %d bytes, want 1..%d", len(chunk), stream.MaxChunkSize)
		}
		if cap(chunk) != len(chunk) {
			t.Errorf("chunk has cap %d for len %d: it pins a larger buffer", cap(chunk), len(chunk))
		}
		got = append(got, chunk...)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("chunks add up to %d bytes, want the %d sent", len(got), len(want))
	}
	// EOF stays EOF.
	if _, err := server.ReadChunk(ctx); err != io.EOF {
		t.Errorf("ReadChunk after EOF = %v, want io.EOF", err)
	}
}

func TestReadChunkContext(t *testing.T) {
	t.Run("cancel unblocks within 100ms and the stream still works", func(t *testing.T) {
		c, s := newConnPair(t, nil)
		cq, sq := openBidi(t, c, s)
		client, server := stream.NewStream(cq), stream.NewStream(sq)

		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(50*time.Millisecond, cancel)
		start := time.Now()
		_, err := server.ReadChunk(ctx)
		if elapsed := time.Since(start); elapsed > 150*time.Millisecond {
			t.Errorf("ReadChunk returned %v after the call, %v after the cancel; want within 100ms of it",
				elapsed, elapsed-50*time.Millisecond)
		}
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("ReadChunk = %v, want context.Canceled", err)
		}
		wantOp(t, err, "read")

		// The interrupt must not leave the deadline in the past.
		client.Write([]byte("after"))
		chunk, err := server.ReadChunk(context.Background())
		if err != nil || string(chunk) != "after" {
			t.Errorf("ReadChunk after a cancelled one = %q, %v; want \"after\", nil", chunk, err)
		}
	})

	t.Run("context deadline", func(t *testing.T) {
		c, s := newConnPair(t, nil)
		_, sq := openBidi(t, c, s)
		server := stream.NewStream(sq)

		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := server.ReadChunk(ctx)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("ReadChunk = %v, want context.DeadlineExceeded", err)
		}
		if elapsed := time.Since(start); elapsed > 130*time.Millisecond {
			t.Errorf("returned after %v, want about 30ms", elapsed)
		}
	})

	t.Run("already cancelled context returns at once", func(t *testing.T) {
		c, s := newConnPair(t, nil)
		cq, sq := openBidi(t, c, s)
		client, server := stream.NewStream(cq), stream.NewStream(sq)
		client.Write([]byte("data waiting"))

		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := server.ReadChunk(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("ReadChunk = %v, want context.Canceled", err)
		}
	})

	t.Run("user deadline is restored after an interrupt", func(t *testing.T) {
		c, s := newConnPair(t, nil)
		_, sq := openBidi(t, c, s)
		server := stream.NewStream(sq)

		deadline := time.Now().Add(300 * time.Millisecond)
		server.SetReadDeadline(deadline)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		if _, err := server.ReadChunk(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("ReadChunk = %v, want context.DeadlineExceeded", err)
		}
		// Were the interrupt's past deadline left in place, this Read would
		// fail at once; the user's deadline makes it wait until then.
		_, err := server.Read(make([]byte, 10))
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("Read = %v, want os.ErrDeadlineExceeded", err)
		}
		if early := time.Until(deadline); early > 20*time.Millisecond {
			t.Errorf("Read timed out %v before the user's deadline", early)
		}
	})

	t.Run("user deadline set during an interrupt is kept", func(t *testing.T) {
		c, s := newConnPair(t, nil)
		cq, sq := openBidi(t, c, s)
		client, server := stream.NewStream(cq), stream.NewStream(sq)

		// A deadline set while ReadChunk waits applies to it and survives it.
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		time.AfterFunc(30*time.Millisecond, func() { server.SetReadDeadline(time.Now().Add(-time.Second)) })
		_, err := server.ReadChunk(ctx)
		if !errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.Canceled) {
			t.Fatalf("ReadChunk = %v, want os.ErrDeadlineExceeded (the user's deadline)", err)
		}
		client.Write([]byte("x"))
		time.Sleep(20 * time.Millisecond)
		if _, err := server.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("Read = %v, want the user's passed deadline to hold", err)
		}
		server.SetReadDeadline(time.Time{})
		if chunk, err := server.ReadChunk(ctx); err != nil || string(chunk) != "x" {
			t.Errorf("ReadChunk after clearing the deadline = %q, %v", chunk, err)
		}
	})
}

func TestCloseSendsFIN(t *testing.T) {
	c, s := newConnPair(t, nil)
	cq, sq := openBidi(t, c, s)
	client, server := stream.NewStream(cq), stream.NewStream(sq)

	client.Write([]byte("last words"))
	if err := client.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := client.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
	buf := make([]byte, 64)
	var got []byte
	var err error
	for err == nil {
		var n int
		n, err = server.Read(buf)
		got = append(got, buf[:n]...)
	}
	if err != io.EOF {
		t.Errorf("Read at FIN = %v (%T), want bare io.EOF", err, err)
	}
	if string(got) != "last words" {
		t.Errorf("read %q", got)
	}

	// Close finished only the client's write side: the server can still reply.
	server.Write([]byte("reply"))
	server.Close()
	if got, err := io.ReadAll(client); err != nil || string(got) != "reply" {
		t.Errorf("client read %q, %v; want \"reply\"", got, err)
	}
}

func TestWriteAfterClose(t *testing.T) {
	c, s := newConnPair(t, nil)
	cq, _ := openBidi(t, c, s)
	client := stream.NewStream(cq)

	client.Close()
	n, err := client.Write([]byte("too late"))
	if n != 0 || !errors.Is(err, qerr.ErrFinished) {
		t.Fatalf("Write after Close = %d, %v; want 0, ErrFinished", n, err)
	}
	wantOp(t, err, "write")
	if !errors.Is(err, quic.ErrStreamClosed) {
		t.Errorf("quic-go's ErrStreamClosed is not reachable from %v", err)
	}
}

func TestCancelWrite(t *testing.T) {
	c, s := newConnPair(t, nil)
	cq, sq := openBidi(t, c, s)
	client, server := stream.NewStream(cq), stream.NewStream(sq)

	if err := client.CancelWrite(7); err != nil {
		t.Fatalf("CancelWrite: %v", err)
	}
	_, err := server.Read(make([]byte, 10))
	wantStreamError(t, err, "read", qerr.Reset, true, 7)

	chunk, err := server.ReadChunk(context.Background())
	if chunk != nil {
		t.Errorf("ReadChunk returned data %q", chunk)
	}
	wantStreamError(t, err, "read", qerr.Reset, true, 7)

	_, err = client.Write([]byte("x"))
	wantStreamError(t, err, "write", qerr.Stopped, false, 7)

	err = client.Close()
	wantStreamError(t, err, "close", qerr.Stopped, false, 7)

	if err := client.CancelWrite(8); err != nil {
		t.Errorf("second CancelWrite = %v", err)
	}
}

func TestCancelRead(t *testing.T) {
	c, s := newConnPair(t, nil)
	cq, sq := openBidi(t, c, s)
	client, server := stream.NewStream(cq), stream.NewStream(sq)

	if err := server.CancelRead(9); err != nil {
		t.Fatalf("CancelRead: %v", err)
	}
	_, err := server.Read(make([]byte, 10))
	wantStreamError(t, err, "read", qerr.Reset, false, 9)

	// STOP_SENDING takes a round trip to arrive: write until it does.
	deadline := time.Now().Add(testTimeout)
	buf := make([]byte, 1024)
	for {
		if _, err = client.Write(buf); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("writes never failed after the peer's CancelRead")
		}
		time.Sleep(time.Millisecond)
	}
	wantStreamError(t, err, "write", qerr.Stopped, true, 9)

	// The peer's STOP_SENDING aborted the write side: Close reports it.
	wantStreamError(t, client.Close(), "close", qerr.Stopped, true, 9)
}

func TestCancelUnblocksWrite(t *testing.T) {
	c, s := newConnPair(t, smallWindow())
	cq, sq := openBidi(t, c, s)
	client, server := stream.NewStream(cq), stream.NewStream(sq)

	writeErr := make(chan error, 1)
	go func() {
		// Far more than the 16 KiB flow-control window: this Write blocks.
		_, err := client.Write(make([]byte, 1<<20))
		writeErr <- err
	}()
	// The server reads nothing until the cancel, so the Write stays blocked
	// on flow control and cannot complete first.
	time.Sleep(50 * time.Millisecond)
	client.CancelWrite(3)
	readErr := make(chan error, 1)
	go func() {
		// Drain what arrived until the reset.
		_, err := io.Copy(io.Discard, server)
		readErr <- err
	}()
	select {
	case err := <-writeErr:
		wantStreamError(t, err, "write", qerr.Stopped, false, 3)
	case <-time.After(testTimeout):
		t.Fatal("blocked Write did not return after CancelWrite")
	}
	select {
	case err := <-readErr:
		wantStreamError(t, err, "read", qerr.Reset, true, 3)
	case <-time.After(testTimeout):
		t.Fatal("Read did not return after the peer's CancelWrite")
	}
}

func TestCancelCodeOutOfRange(t *testing.T) {
	c, s := newConnPair(t, nil)
	cq, _ := openBidi(t, c, s)
	client := stream.NewStream(cq)

	const tooBig = 1 << 62
	err := client.CancelWrite(tooBig)
	if !errors.Is(err, qerr.ErrInvalidCode) {
		t.Errorf("CancelWrite(2^62) = %v, want ErrInvalidCode", err)
	}
	wantOp(t, err, "cancel write")
	err = client.CancelRead(tooBig)
	if !errors.Is(err, qerr.ErrInvalidCode) {
		t.Errorf("CancelRead(2^62) = %v, want ErrInvalidCode", err)
	}
	wantOp(t, err, "cancel read")

	// The stream is untouched and the largest code is accepted.
	if _, err := client.Write([]byte("fine")); err != nil {
		t.Errorf("Write after a rejected CancelWrite: %v", err)
	}
	if err := client.CancelWrite(tooBig - 1); err != nil {
		t.Errorf("CancelWrite(2^62-1) = %v, want nil", err)
	}
}

func TestDeadlines(t *testing.T) {
	c, s := newConnPair(t, smallWindow())
	cq, sq := openBidi(t, c, s)
	client, server := stream.NewStream(cq), stream.NewStream(sq)

	checkTimeout := func(t *testing.T, err error, op string) {
		t.Helper()
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("%s = %v, want os.ErrDeadlineExceeded", op, err)
		}
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Errorf("%s error %v is not a net.Error with Timeout", op, err)
		}
		wantOp(t, err, op)
	}

	t.Run("read deadline", func(t *testing.T) {
		server.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
		start := time.Now()
		_, err := server.Read(make([]byte, 10))
		checkTimeout(t, err, "read")
		if elapsed := time.Since(start); elapsed < 20*time.Millisecond {
			t.Errorf("timed out after %v, before the deadline", elapsed)
		}
		server.SetReadDeadline(time.Time{})
	})

	t.Run("write deadline", func(t *testing.T) {
		client.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
		big := make([]byte, 1<<20)
		n, err := client.Write(big)
		checkTimeout(t, err, "write")
		if n >= len(big) {
			t.Errorf("Write took %d bytes past the 16 KiB window", n)
		}
		client.SetWriteDeadline(time.Time{})
	})

	t.Run("SetDeadline sets both", func(t *testing.T) {
		server.SetDeadline(time.Now().Add(-time.Second))
		_, err := server.Read(make([]byte, 1))
		checkTimeout(t, err, "read")
		_, err = server.Write([]byte("x"))
		checkTimeout(t, err, "write")
		server.SetDeadline(time.Time{})
		if _, err := server.Write([]byte("x")); err != nil {
			t.Errorf("Write after clearing the deadline: %v", err)
		}
	})
}

func TestSplit(t *testing.T) {
	c, s := newConnPair(t, nil)
	cq, sq := openBidi(t, c, s)
	client, server := stream.NewStream(cq), stream.NewStream(sq)

	r, w := client.Split()
	if r.ID() != client.ID() || w.ID() != client.ID() {
		t.Errorf("halves' IDs %d, %d; want %d", r.ID(), w.ID(), client.ID())
	}
	r2, w2 := client.Split()
	if r != r2 || w != w2 {
		t.Error("Split returned different halves on a second call")
	}
	if allocs := testing.AllocsPerRun(100, func() { client.Split() }); allocs != 0 {
		t.Errorf("Split allocates %v times, want 0", allocs)
	}

	go func() {
		io.Copy(server, server)
		server.Close()
	}()

	want := pattern(1 << 20)
	var wg sync.WaitGroup
	wg.Go(func() {
		for rest := want; len(rest) > 0; {
			n := min(len(rest), 10000)
			if _, err := w.Write(rest[:n]); err != nil {
				t.Errorf("write half: %v", err)
				return
			}
			rest = rest[n:]
		}
		if err := w.Close(); err != nil {
			t.Errorf("write half close: %v", err)
		}
	})
	var got []byte
	wg.Go(func() {
		var err error
		got, err = io.ReadAll(r)
		if err != nil {
			t.Errorf("read half: %v", err)
		}
	})
	wg.Wait()
	if sha256.Sum256(got) != sha256.Sum256(want) {
		t.Errorf("read half got %d bytes that differ from the %d written", len(got), len(want))
	}
}

func TestSendOnlyStream(t *testing.T) {
	c, s := newConnPair(t, nil)
	cq, sq := openUni(t, c, s)
	client, server := stream.NewSendOnlyStream(cq), stream.NewReadStream(sq)

	if client.Type() != stream.Unidirectional {
		t.Errorf("Type = %v, want unidirectional", client.Type())
	}
	if client.ID() != int64(cq.StreamID()) || server.ID() != client.ID() {
		t.Errorf("IDs = %d, %d; want %d", client.ID(), server.ID(), cq.StreamID())
	}

	n, err := client.Read(make([]byte, 10))
	if n != 0 || !errors.Is(err, qerr.ErrClosed) {
		t.Errorf("Read = %d, %v; want 0, ErrClosed", n, err)
	}
	wantOp(t, err, "read")
	_, err = client.ReadChunk(context.Background())
	if !errors.Is(err, qerr.ErrClosed) {
		t.Errorf("ReadChunk = %v, want ErrClosed", err)
	}
	wantOp(t, err, "read")
	r, _ := client.Split()
	if _, err := r.Read(make([]byte, 1)); !errors.Is(err, qerr.ErrClosed) {
		t.Errorf("read half's Read = %v, want ErrClosed", err)
	}
	if err := client.CancelRead(1); err != nil {
		t.Errorf("CancelRead = %v, want nil (a no-op)", err)
	}
	if err := client.SetReadDeadline(time.Now()); err != nil {
		t.Errorf("SetReadDeadline = %v, want nil", err)
	}

	client.WriteChunks([][]byte{[]byte("one way")}, true)
	got, err := io.ReadAll(server)
	if err != nil || string(got) != "one way" {
		t.Errorf("peer read %q, %v", got, err)
	}
}

func TestReadStreamCancelRead(t *testing.T) {
	c, s := newConnPair(t, nil)
	cq, sq := openUni(t, c, s)
	client, server := stream.NewSendOnlyStream(cq), stream.NewReadStream(sq)

	server.CancelRead(5)
	_, err := server.Read(make([]byte, 1))
	wantStreamError(t, err, "read", qerr.Reset, false, 5)

	deadline := time.Now().Add(testTimeout)
	for err = nil; err == nil; _, err = client.Write(make([]byte, 100)) {
		if time.Now().After(deadline) {
			t.Fatal("writes never failed after the peer's CancelRead")
		}
		time.Sleep(time.Millisecond)
	}
	wantStreamError(t, err, "write", qerr.Stopped, true, 5)
}

func TestConnectionClosed(t *testing.T) {
	c, s := newConnPair(t, nil)
	cq, sq := openBidi(t, c, s)
	client, server := stream.NewStream(cq), stream.NewStream(sq)
	uq, _ := openUni(t, c, s)
	msgs := stream.NewSendStream(uq, 0)

	blockedRead := make(chan error, 1)
	go func() {
		_, err := client.Read(make([]byte, 1))
		blockedRead <- err
	}()

	s.CloseWithError(42, "bye")
	<-c.Context().Done()

	wantConnErr := func(t *testing.T, err error, op string, reason qerr.Reason, code uint64, message string) {
		t.Helper()
		wantOp(t, err, op)
		if !errors.Is(err, qerr.ErrConnectionLost) {
			t.Errorf("%v does not match ErrConnectionLost", err)
		}
		ce, ok := errors.AsType[*qerr.ConnectionError](err)
		if !ok {
			t.Fatalf("%v is not a *qerr.ConnectionError", err)
		}
		if ce.Reason != reason || ce.Code != code || ce.Message != message {
			t.Errorf("ConnectionError = {%v %d %q}, want {%v %d %q}", ce.Reason, ce.Code, ce.Message, reason, code, message)
		}
		if _, ok := errors.AsType[*quic.ApplicationError](err); !ok {
			t.Errorf("quic-go's *ApplicationError is not reachable from %v", err)
		}
	}

	t.Run("peer side", func(t *testing.T) {
		select {
		case err := <-blockedRead:
			wantConnErr(t, err, "read", qerr.ShutdownByPeer, 42, "bye")
		case <-time.After(testTimeout):
			t.Fatal("blocked Read did not return when the connection closed")
		}
		_, err := client.Read(make([]byte, 1))
		wantConnErr(t, err, "read", qerr.ShutdownByPeer, 42, "bye")
		_, err = client.ReadChunk(context.Background())
		wantConnErr(t, err, "read", qerr.ShutdownByPeer, 42, "bye")
		_, err = client.Write([]byte("x"))
		wantConnErr(t, err, "write", qerr.ShutdownByPeer, 42, "bye")
		_, err = client.WriteChunks([][]byte{[]byte("x")}, true)
		wantConnErr(t, err, "write", qerr.ShutdownByPeer, 42, "bye")
		wantConnErr(t, client.Close(), "close", qerr.ShutdownByPeer, 42, "bye")
		wantConnErr(t, msgs.Send(context.Background(), []byte("m")), "send message", qerr.ShutdownByPeer, 42, "bye")
		wantConnErr(t, msgs.Close(), "close", qerr.ShutdownByPeer, 42, "bye")
	})

	t.Run("local side", func(t *testing.T) {
		_, err := server.Read(make([]byte, 1))
		wantConnErr(t, err, "read", qerr.ShutdownByLocal, 42, "bye")
		_, err = server.Write([]byte("x"))
		wantConnErr(t, err, "write", qerr.ShutdownByLocal, 42, "bye")
	})
}

func TestCloseAfterSuccessfulCloseIgnoresLaterShutdown(t *testing.T) {
	c, s := newConnPair(t, nil)
	cq, _ := openBidi(t, c, s)
	client := stream.NewStream(cq)

	if err := client.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s.CloseWithError(1, "")
	<-c.Context().Done()
	if err := client.Close(); err != nil {
		t.Errorf("Close after a successful Close and a later shutdown = %v, want nil", err)
	}
}

func TestZeroValueHalves(t *testing.T) {
	var r stream.ReadStream
	var w stream.WriteStream
	if _, err := r.Read(make([]byte, 1)); !errors.Is(err, qerr.ErrClosed) {
		t.Errorf("zero ReadStream Read = %v, want ErrClosed", err)
	}
	if _, err := w.Write([]byte("x")); !errors.Is(err, qerr.ErrClosed) {
		t.Errorf("zero WriteStream Write = %v, want ErrClosed", err)
	}
	if err := w.Close(); !errors.Is(err, qerr.ErrClosed) {
		t.Errorf("zero WriteStream Close = %v, want ErrClosed", err)
	}
	if r.CancelRead(1) != nil || w.CancelWrite(1) != nil {
		t.Error("cancelling a zero half failed")
	}
}

func TestTypeString(t *testing.T) {
	tests := []struct {
		t    stream.Type
		want string
	}{
		{stream.Bidirectional, "bidirectional"},
		{stream.Unidirectional, "unidirectional"},
		{stream.Type(7), "Type(7)"},
	}
	for _, tt := range tests {
		if got := tt.t.String(); got != tt.want {
			t.Errorf("Type(%d).String() = %q, want %q", uint8(tt.t), got, tt.want)
		}
	}
}
