package stream_test

import (
	"context"
	"io"
	"testing"

	"github.com/quicconn/quicconn/stream"
)

const benchSize = 64 << 10

// BenchmarkWrite64K measures Write of 64 KiB on the wrapper and on the raw
// quic-go stream beneath it, over loopback, with the peer draining.
func BenchmarkWrite64K(b *testing.B) {
	for _, wrapped := range []bool{false, true} {
		b.Run(map[bool]string{false: "raw", true: "wrapper"}[wrapped], func(b *testing.B) {
			c, s := newConnPair(b, nil)
			cq, sq := openBidi(b, c, s)
			write := cq.Write
			if wrapped {
				write = stream.NewStream(cq).Write
			}
			drained := make(chan struct{})
			go func() {
				defer close(drained)
				io.Copy(io.Discard, sq)
			}()
			buf := pattern(benchSize)
			b.SetBytes(benchSize)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := write(buf); err != nil {
					b.Fatal(err)
				}
			}
			cq.Close()
			<-drained
		})
	}
}

// BenchmarkRead64K measures Read into a 64 KiB buffer on the wrapper and on
// the raw quic-go stream beneath it, over loopback, with the peer writing.
func BenchmarkRead64K(b *testing.B) {
	for _, wrapped := range []bool{false, true} {
		b.Run(map[bool]string{false: "raw", true: "wrapper"}[wrapped], func(b *testing.B) {
			c, s := newConnPair(b, nil)
			cq, sq := openBidi(b, c, s)
			read := sq.Read
			if wrapped {
				read = stream.NewStream(sq).Read
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go func() {
				buf := pattern(benchSize)
				for ctx.Err() == nil {
					if _, err := cq.Write(buf); err != nil {
						return
					}
				}
			}()
			buf := make([]byte, benchSize)
			b.SetBytes(benchSize)
			b.ReportAllocs()
			for b.Loop() {
				for got := 0; got < benchSize; {
					n, err := read(buf[got:])
					if err != nil {
						b.Fatal(err)
					}
					got += n
				}
			}
			cancel()
			cq.CancelWrite(0)
			sq.CancelRead(0)
		})
	}
}

// BenchmarkMessage1K measures Send and ReadMessage of 1 KiB messages over
// loopback.
func BenchmarkMessage1K(b *testing.B) {
	c, s := newConnPair(b, nil)
	cq, sq := openUni(b, c, s)
	sender := stream.NewSendStream(cq, 0)
	reader := stream.NewMessageReader(stream.NewReadStream(sq), 0)
	msg := pattern(1 << 10)

	received := make(chan int, 1)
	go func() {
		n := 0
		for {
			if _, err := reader.ReadMessage(); err != nil {
				received <- n
				return
			}
			n++
		}
	}()
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	ctx := context.Background()
	sent := 0
	for b.Loop() {
		if err := sender.Send(ctx, msg); err != nil {
			b.Fatal(err)
		}
		sent++
	}
	sender.Close()
	if n := <-received; n != sent {
		b.Fatalf("received %d messages, sent %d", n, sent)
	}
}
