package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/quicconn/quicconn/conn"
	"github.com/quicconn/quicconn/conntest"
	"github.com/quicconn/quicconn/stream"
)

// The wan workload: one bulk transfer over an in-memory link with a long
// delay, a bandwidth limit and random loss (conntest), each QUIC stack with
// its own defaults — quicconn's zero Settings, quic-go's zero quic.Config —
// to see whether the defaults quicconn owns (receive windows, the initial
// packet size) hold a long path back. It runs in real time: the delays are
// real, so a sample takes as long as the transfer does.

// wanParams describe the link and the transfer.
type wanParams struct {
	size  int64   // bytes
	mbits float64 // link rate, Mbit/s
	link  conntest.Link
}

var (
	defaultWAN = wanParams{size: 64 << 20, mbits: 200, link: conntest.Link{Delay: 50 * time.Millisecond, Loss: 0.001}}
	quickWAN   = wanParams{size: 8 << 20, mbits: 200, link: conntest.Link{Delay: 50 * time.Millisecond, Loss: 0.001}}
)

func (w wanParams) String() string {
	return fmt.Sprintf("wan %d MiB, %v, %s Mbit/s, %s %% loss", w.size>>20, w.link.Delay,
		strconv.FormatFloat(w.mbits, 'f', -1, 64), strconv.FormatFloat(100*w.link.Loss, 'f', -1, 64))
}

// conntestLink is the Link of both directions: conntest counts bandwidth
// in bytes per second.
func (w wanParams) conntestLink(seed int64) conntest.Link {
	l := w.link
	l.Bandwidth = int64(w.mbits * 1e6 / 8)
	l.Seed = seed
	return l
}

var wanMetrics = []metricSpec{
	{"MB/s", true, contract{}, false},
	{"s", false, contract{}, false},
	{"link use %", true, contract{}, false},
	{"packets lost", false, contract{}, false},
	{"final srtt ms", false, contract{}, false},
}

// wan transfers p.size bytes from a client to a server over a fresh pipe
// and times it from the first byte written to the server's
// acknowledgement of the last. seed fixes the link's loss pattern: the
// samples of one round share it.
func wan(ctx context.Context, name string, cr *creds, p wanParams, seed int64) (figures, error) {
	a, b := conntest.NewPipe(p.conntestLink(seed))
	defer a.Close()
	defer b.Close()
	var (
		took time.Duration
		srtt time.Duration
		err  error
	)
	switch name {
	case qgo:
		took, srtt, err = wanRaw(ctx, cr, a, b, p.size, &quic.Config{})
	case qc:
		took, srtt, err = wanConn(ctx, cr, a, b, p.size, conn.Settings{})
	default:
		return nil, fmt.Errorf("wan: no QUIC stack %s", name)
	}
	if err != nil {
		return nil, err
	}
	st := a.Stats()
	rate := float64(p.size) / took.Seconds()
	return figures{
		"MB/s":          rate / 1e6,
		"s":             took.Seconds(),
		"link use %":    100 * rate / (p.mbits * 1e6 / 8),
		"packets lost":  float64(st.Dropped),
		"final srtt ms": float64(srtt.Microseconds()) / 1e3,
	}, nil
}

// wanServe receives one stream to its end and answers with the byte count.
func wanServe(st io.ReadWriteCloser) error {
	n, err := drain(st)
	if err != nil {
		return err
	}
	var out [8]byte
	binary.BigEndian.PutUint64(out[:], uint64(n))
	if _, err := st.Write(out[:]); err != nil {
		return err
	}
	return st.Close()
}

// wanSend writes size bytes on st, ends it and waits for the count.
func wanSend(st pstream, size int64) (time.Duration, error) {
	buf := make([]byte, chunkSize)
	start := time.Now()
	for sent := int64(0); sent < size; {
		n, err := st.Write(buf[:min(int64(len(buf)), size-sent)])
		sent += int64(n)
		if err != nil {
			return 0, err
		}
	}
	if err := st.CloseWrite(); err != nil {
		return 0, err
	}
	var ack [8]byte
	if _, err := io.ReadFull(st, ack[:]); err != nil {
		return 0, fmt.Errorf("reading the server's count: %w", err)
	}
	took := time.Since(start)
	if got := int64(binary.BigEndian.Uint64(ack[:])); got != size {
		return 0, fmt.Errorf("the server received %d of %d bytes", got, size)
	}
	return took, nil
}

// wanRaw is the transfer over raw quic-go with qconf on both sides. It
// returns the transfer time and the client's final smoothed RTT.
func wanRaw(ctx context.Context, cr *creds, a, b *conntest.PacketConn, size int64, qconf *quic.Config) (time.Duration, time.Duration, error) {
	ctr, str := &quic.Transport{Conn: a}, &quic.Transport{Conn: b}
	defer ctr.Close()
	defer str.Close()
	ln, err := str.ListenEarly(cr.server.ServerTLSConfig([]string{alpn}), qconf)
	if err != nil {
		return 0, 0, err
	}
	defer ln.Close()
	served := make(chan error, 1)
	go func() {
		served <- func() error {
			c, err := ln.Accept(ctx)
			if err != nil {
				return err
			}
			defer c.CloseWithError(0, "")
			st, err := c.AcceptStream(ctx)
			if err != nil {
				return err
			}
			if err := wanServe(st); err != nil {
				return err
			}
			// Hold the connection until the client has read the count.
			<-c.Context().Done()
			return nil
		}()
	}()
	c, err := ctr.Dial(ctx, b.LocalAddr(), cr.client.ClientTLSConfig("127.0.0.1", []string{alpn}), qconf)
	if err != nil {
		return 0, 0, errors.Join(err, <-served)
	}
	st, err := c.OpenStreamSync(ctx)
	if err != nil {
		c.CloseWithError(0, "")
		return 0, 0, errors.Join(err, <-served)
	}
	took, err := wanSend(rawStream{st}, size)
	srtt := c.ConnectionStats().SmoothedRTT
	c.CloseWithError(0, "")
	if err := errors.Join(err, <-served); err != nil {
		return 0, 0, err
	}
	return took, srtt, nil
}

// wanConn is the transfer over quicconn with s on both sides.
func wanConn(ctx context.Context, cr *creds, a, b *conntest.PacketConn, size int64, s conn.Settings) (time.Duration, time.Duration, error) {
	cfg, err := conn.NewConfiguration([]string{alpn}, s)
	if err != nil {
		return 0, 0, err
	}
	reg := conn.NewRegistration("perf-wan")
	defer reg.Close()
	ln, err := conn.Listen(reg, "", cfg, cr.server, conn.WithPacketConn(b))
	if err != nil {
		return 0, 0, err
	}
	defer ln.Close()
	served := make(chan error, 1)
	go func() {
		served <- func() error {
			c, err := ln.Accept(ctx)
			if err != nil {
				return err
			}
			defer c.Shutdown(0)
			if err := c.Accept(ctx); err != nil {
				return err
			}
			st, err := c.AcceptInboundStream(ctx)
			if err != nil {
				return err
			}
			if err := wanServe(st); err != nil {
				return err
			}
			<-c.WatchShutdown()
			return nil
		}()
	}()
	c, err := conn.New(reg, cr.client, conn.WithPacketConn(a))
	if err != nil {
		return 0, 0, errors.Join(err, <-served)
	}
	if err := c.Start(ctx, cfg, "127.0.0.2", 1); err != nil {
		return 0, 0, errors.Join(err, <-served)
	}
	st, err := c.OpenOutboundStream(ctx, stream.Bidirectional, false)
	if err != nil {
		c.Shutdown(0)
		return 0, 0, errors.Join(err, <-served)
	}
	took, err := wanSend(connStream{st}, size)
	srtt := c.Stats().SmoothedRTT
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c.ShutdownAndWait(sctx, 0)
	if err := errors.Join(err, <-served); err != nil {
		return 0, 0, err
	}
	return took, srtt, nil
}
