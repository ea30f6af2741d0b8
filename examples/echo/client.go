package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/quicconn/quicconn/certverify"
	"github.com/quicconn/quicconn/conn"
	qerr "github.com/quicconn/quicconn/errors"
	"github.com/quicconn/quicconn/stream"
)

// The client's side of the protocol, one function per step.

// The bytes the client echoes on a stream, and the messages it sends.
var (
	echoPayload = []byte("hello over a bidirectional QUIC stream")
	messages    = []string{"one", "two", "three"}
)

// stepTimeout bounds each step after the handshake.
const stepTimeout = 10 * time.Second

// printer writes the numbered, timed step lines.
type printer struct{ out io.Writer }

func (p *printer) step(name string, took time.Duration, format string, args ...any) {
	fmt.Fprintf(p.out, "%-10s %9s  %s\n", name, round(took), fmt.Sprintf(format, args...))
}

func round(d time.Duration) time.Duration {
	switch {
	case d > time.Second:
		return d.Round(time.Millisecond)
	case d > time.Millisecond:
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}

// runSteps drives one client connection through the demo: handshake,
// certificates, stream echo, messages, datagrams, shutdown, printing a line
// per step. On success the connection is shut down (ShutdownComplete).
func runSteps(ctx context.Context, p *printer, c *conn.Connection, cfg *config, host string, port uint16) error {
	// Handshake. Start returns when it has completed; -timeout bounds it
	// (Settings.HandshakeTimeout), ctx only guards against a hang.
	t := time.Now()
	hctx, cancel := context.WithTimeout(ctx, cfg.timeout+time.Second)
	err := c.Start(hctx, cfg.configuration(), host, port)
	cancel()
	if err != nil {
		return err
	}
	p.step("handshake", time.Since(t), "connected to %s, ALPN %q", joinHostPort(host, port), c.NegotiatedALPN())

	// The server's certificate, already verified against -trust. As the
	// client, our handshake completes before the server has checked our
	// certificate, so a rejection shows up in the next step as a lost
	// connection with the TLS bad_certificate alert.
	t = time.Now()
	ctx, cancel = context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	cert, err := c.ReceiveRemoteCertificate(ctx)
	if err != nil {
		return err
	}
	p.step("identity", time.Since(t), "server %s (pinned)", certverify.HashOf(cert.Raw))

	// A bidirectional stream: write, FIN, read the echo until the server's FIN.
	t = time.Now()
	s, err := c.OpenOutboundStream(ctx, stream.Bidirectional, false)
	if err != nil {
		return err
	}
	if _, err := s.Write(echoPayload); err != nil {
		return err
	}
	if err := s.Close(); err != nil {
		return err
	}
	got, err := io.ReadAll(s)
	if err != nil {
		return err
	}
	if !bytes.Equal(got, echoPayload) {
		return fmt.Errorf("stream echo: got %q, want %q", got, echoPayload)
	}
	p.step("stream", time.Since(t), "echoed %d bytes on stream %d: %q", len(got), s.ID(), got)

	// Messages: a SendStream frames each Send; the server reads them with a
	// MessageReader and answers on a message stream of its own.
	t = time.Now()
	ss, err := c.OpenSendStream(ctx)
	if err != nil {
		return err
	}
	for _, m := range messages {
		if err := ss.Send(ctx, []byte(m)); err != nil {
			return err
		}
	}
	if err := ss.Close(); err != nil {
		return err
	}
	rs, err := c.AcceptInboundUniStream(ctx)
	if err != nil {
		return err
	}
	reply, err := stream.NewMessageReader(rs, 0).ReadMessage()
	if err != nil {
		return fmt.Errorf("reading the server's reply: %w", err)
	}
	p.step("messages", time.Since(t), "sent %d messages, server replied %q", len(messages), reply)

	// Datagrams: unreliable, so count what comes back rather than insist.
	t = time.Now()
	max := c.MaxDatagramSize()
	if max == 0 {
		p.step("datagrams", time.Since(t), "not enabled by the server")
	} else {
		const n = 3
		for i := 1; i <= n; i++ {
			if err := c.SendDatagram(fmt.Appendf(nil, "datagram %d", i)); err != nil {
				return err
			}
		}
		echoed := 0
		dctx, dcancel := context.WithTimeout(ctx, 2*time.Second)
		for echoed < n {
			if _, err := c.ReceiveDatagram(dctx); err != nil {
				if errors.Is(err, context.DeadlineExceeded) {
					break // lost: datagrams are not retransmitted
				}
				dcancel()
				return err
			}
			echoed++
		}
		dcancel()
		p.step("datagrams", time.Since(t), "sent %d, %d echoed back (largest payload now %d bytes)", n, echoed, max)
	}

	// Shutdown with application code 0; the server sees ShutdownByPeer.
	t = time.Now()
	if err := c.ShutdownAndWait(ctx, 0); err != nil {
		return err
	}
	p.step("shutdown", time.Since(t), "closed with code 0, state %v", c.State())
	return nil
}

func joinHostPort(host string, port uint16) string {
	if strings.Contains(host, ":") {
		return fmt.Sprintf("[%s]:%d", host, port)
	}
	return fmt.Sprintf("%s:%d", host, port)
}

// formatStats prints the figures of conn.Stats on one line.
func formatStats(s conn.Stats) string {
	return fmt.Sprintf("rtt %v (min %v), sent %d packets/%d bytes, received %d packets/%d bytes, lost %d, streams %d opened/%d accepted, datagrams %d sent/%d received/%d dropped",
		round(s.SmoothedRTT), round(s.MinRTT), s.PacketsSent, s.BytesSent, s.PacketsReceived, s.BytesReceived,
		s.PacketsLost, s.StreamsOpened, s.StreamsAccepted, s.DatagramsSent, s.DatagramsReceived, s.DatagramsDropped)
}

// closedNormally reports whether err, a connection's final error, is the
// ordinary end of a session: closed with code 0 by either side.
func closedNormally(err error) bool {
	var ce *qerr.ConnectionError
	if !errors.As(err, &ce) {
		return err == nil
	}
	return (ce.Reason == qerr.ShutdownByPeer || ce.Reason == qerr.ShutdownByLocal) && ce.Code == 0
}
