package reliability_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"testing/synctest"
	"time"

	"github.com/quicconn/quicconn/conn"
	qerr "github.com/quicconn/quicconn/errors"
	"github.com/quicconn/quicconn/stream"
)

// TestResetsAndStopsAtEveryPoint aborts one direction of a stream before any
// data, in the middle of a transfer and after FIN, with CancelWrite (by the
// writer) and CancelRead (by the reader), client→server and server→client.
// The other side sees the right *qerr.StreamError — or, after FIN, possibly
// the complete data — and nothing hangs (every wait has a deadline) or
// panics.
func TestResetsAndStopsAtEveryPoint(t *testing.T) {
	const code = 0x1234
	type phase int
	const (
		beforeData phase = iota
		midTransfer
		afterFIN
	)
	phases := []struct {
		p    phase
		name string
	}{{beforeData, "before any data"}, {midTransfer, "mid-transfer"}, {afterFIN, "after FIN"}}
	for _, dir := range []string{"client→server", "server→client"} {
		for _, ph := range phases {
			for _, action := range []string{"CancelWrite", "CancelRead"} {
				name := fmt.Sprintf("%s %s %s", dir, action, ph.name)
				t.Run(name, func(t *testing.T) {
					synctest.Test(t, func(t *testing.T) {
						p := newPair(t, pairConfig{settings: conn.Settings{StreamReceiveWindow: 64 << 10, ConnectionReceiveWindow: 256 << 10}})
						writer, reader := p.client, p.server
						if dir == "server→client" {
							writer, reader = p.server, p.client
						}
						ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
						defer cancel()
						// The reader opens the stream and says hello, so that the
						// writer knows it before writing anything.
						rs, err := reader.OpenOutboundStream(ctx, stream.Bidirectional, false)
						if err != nil {
							t.Fatal(err)
						}
						if _, err := rs.Write([]byte("h")); err != nil {
							t.Fatal(err)
						}
						ws, err := writer.AcceptInboundStream(ctx)
						if err != nil {
							t.Fatal(err)
						}
						if _, err := readFull(ws, make([]byte, 1)); err != nil {
							t.Fatal(err)
						}
						deadline := time.Now().Add(30 * time.Second)
						ws.SetDeadline(deadline)
						rs.SetDeadline(deadline)

						data := pattern(3, 1<<20)
						var sent int
						switch ph.p {
						case midTransfer:
							// The writer blocks on flow control part-way; the
							// reader takes a little.
							go func() { ws.Write(data) }()
							if _, err := io.ReadFull(rs, make([]byte, 32<<10)); err != nil {
								t.Fatal(err)
							}
							synctest.Wait()
						case afterFIN:
							sent = 16 << 10
							if _, err := ws.WriteChunks([][]byte{data[:sent]}, true); err != nil {
								t.Fatal(err)
							}
							synctest.Wait()
						}

						switch action {
						case "CancelWrite":
							if err := ws.CancelWrite(code); err != nil {
								t.Fatalf("CancelWrite: %v", err)
							}
							// The writer's own later writes fail as locally stopped.
							if _, err := ws.Write([]byte("more")); !isStreamErr(err, qerr.Stopped, code, false) && !(ph.p == afterFIN && errors.Is(err, qerr.ErrFinished)) {
								t.Errorf("writer Write after CancelWrite: %v, want StreamError{Stopped, %#x, local}", err, code)
							}
							// The reader sees the reset (after FIN it may instead get
							// all the data, if the reset came too late to matter).
							got, err := io.ReadAll(rs)
							switch {
							case isStreamErr(err, qerr.Reset, code, true):
							case ph.p == afterFIN && err == nil && bytes.Equal(got, data[:sent]):
							default:
								t.Errorf("reader: read %d bytes, err %v; want StreamError{Reset, %#x, remote}", len(got), err, code)
							}
						case "CancelRead":
							if err := rs.CancelRead(code); err != nil {
								t.Fatalf("CancelRead: %v", err)
							}
							if _, err := rs.Read(make([]byte, 10)); !isStreamErr(err, qerr.Reset, code, false) {
								t.Errorf("reader Read after CancelRead: %v, want StreamError{Reset, %#x, local}", err, code)
							}
							// The writer's writes fail with STOP_SENDING's code; after
							// FIN there is nothing left to write.
							var err error
							for i := 0; i < 1000 && err == nil; i++ {
								_, err = ws.Write(data[:8<<10])
							}
							switch {
							case isStreamErr(err, qerr.Stopped, code, true):
							case ph.p == afterFIN && errors.Is(err, qerr.ErrFinished):
							default:
								t.Errorf("writer Write after the peer's CancelRead: %v, want StreamError{Stopped, %#x, remote}", err, code)
							}
						}
						// Neither side's connection suffered.
						if writer.Err() != nil || reader.Err() != nil {
							t.Errorf("connection lost: writer %v, reader %v", writer.Err(), reader.Err())
						}
						ws.CancelRead(0)
						rs.CancelWrite(0)
					})
				})
			}
		}
	}
}

func isStreamErr(err error, kind qerr.StreamErrorKind, code uint64, remote bool) bool {
	var se *qerr.StreamError
	return errors.As(err, &se) && se.Kind == kind && se.Code == code && se.Remote == remote
}
