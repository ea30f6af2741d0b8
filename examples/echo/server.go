package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quicconn/quicconn/certverify"
	"github.com/quicconn/quicconn/conn"
	"github.com/quicconn/quicconn/examples/internal/cli"
	"github.com/quicconn/quicconn/stream"
)

// served counts what the server did for one client.
type served struct {
	streams, messages, datagrams atomic.Int64
}

func (s *served) String() string {
	return fmt.Sprintf("echoed %d stream(s), read %d message(s), echoed %d datagram(s)",
		s.streams.Load(), s.messages.Load(), s.datagrams.Load())
}

// serve runs the server's side of the protocol on an accepted connection
// until the connection ends. Each kind of traffic has its own goroutine;
// every one of them returns when the connection shuts down, because every
// blocking call of a Connection does.
func serve(ctx context.Context, c *conn.Connection, n *served) error {
	if err := c.Accept(ctx); err != nil {
		return err
	}
	var wg sync.WaitGroup
	wg.Go(func() { echoStreams(ctx, c, n) })
	wg.Go(func() { answerMessages(ctx, c, n) })
	wg.Go(func() { echoDatagrams(ctx, c, n) })
	select {
	case <-c.WatchShutdown():
	case <-ctx.Done():
		c.ShutdownAndWait(context.Background(), 0)
	}
	wg.Wait()
	if err := c.Err(); !closedNormally(err) {
		return err
	}
	return nil
}

// echoStreams writes back what each bidirectional stream carries, then FIN.
func echoStreams(ctx context.Context, c *conn.Connection, n *served) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		s, err := c.AcceptInboundStream(ctx)
		if err != nil {
			return
		}
		wg.Go(func() {
			if _, err := io.Copy(s, s); err != nil {
				s.CancelWrite(1)
				return
			}
			s.Close()
			n.streams.Add(1)
		})
	}
}

// answerMessages reads the messages of each inbound message stream and, at
// its end, answers on a message stream of its own.
func answerMessages(ctx context.Context, c *conn.Connection, n *served) {
	for {
		rs, err := c.AcceptInboundUniStream(ctx)
		if err != nil {
			return
		}
		r := stream.NewMessageReader(rs, 0)
		var got []string
		for {
			m, err := r.ReadMessage()
			if err != nil {
				if !errors.Is(err, io.EOF) {
					rs.CancelRead(1)
					got = nil
				}
				break
			}
			got = append(got, string(m))
			n.messages.Add(1)
		}
		if got == nil {
			continue
		}
		ss, err := c.OpenSendStream(ctx)
		if err != nil {
			return
		}
		ss.Send(ctx, fmt.Appendf(nil, "got %d: %s", len(got), strings.Join(got, ", ")))
		ss.Close()
	}
}

// echoDatagrams sends every datagram back.
func echoDatagrams(ctx context.Context, c *conn.Connection, n *served) {
	for {
		b, err := c.ReceiveDatagram(ctx)
		if err != nil {
			return
		}
		if c.SendDatagram(b) == nil {
			n.datagrams.Add(1)
		}
	}
}

// runDemo runs a listener and a client in this process, with fresh
// certificates pinned to each other.
func runDemo(ctx context.Context, out io.Writer, cfg *config) error {
	reg := conn.NewRegistration("echo")
	defer reg.Close()

	serverCred, err := certverify.GenerateSelfSigned([]string{"echo-server"}, nil)
	if err != nil {
		return err
	}
	clientCred, err := certverify.GenerateSelfSigned([]string{"echo-client"}, nil)
	if err != nil {
		return err
	}
	serverID, _ := certverify.ParseCertHash(serverCred.Identity())
	clientID, _ := certverify.ParseCertHash(clientCred.Identity())
	serverCred.TrustHashes(clientID)
	clientCred.TrustHashes(serverID)

	ln, err := conn.Listen(reg, "127.0.0.1:0", cfg.configuration(), serverCred, conn.WithLogger(cfg.log))
	if err != nil {
		return err
	}
	defer ln.Close()
	fmt.Fprintf(out, "quicconn echo: listener and client in one process\n")
	fmt.Fprintf(out, "listening on %s\n", ln.Addr())
	fmt.Fprintf(out, "server identity %s\n", serverID)
	fmt.Fprintf(out, "client identity %s\n", clientID)

	// The server half: one connection, served until the client closes it.
	type result struct {
		peer certverify.CertHash
		err  error
	}
	var n served
	var srv *conn.Connection
	done := make(chan result, 1)
	go func() {
		c, err := ln.Accept(ctx)
		if err != nil {
			done <- result{err: err}
			return
		}
		srv = c
		err = serve(ctx, c, &n)
		var peer certverify.CertHash
		if cert := c.RemoteCertificate(); cert != nil {
			peer = certverify.HashOf(cert.Raw)
		}
		done <- result{peer, err}
	}()

	c, err := conn.New(reg, clientCred, conn.WithLogger(cfg.log))
	if err != nil {
		return err
	}
	port := uint16(ln.Addr().(*net.UDPAddr).Port)
	p := &printer{out: out}
	if err := runSteps(ctx, p, c, cfg, "127.0.0.1", port); err != nil {
		return fmt.Errorf("%s", explain(err, ln.Addr().String(), clientCred))
	}
	var r result
	select {
	case r = <-done:
	case <-time.After(stepTimeout):
		return errors.New("the server half did not finish")
	}
	if r.err != nil {
		return fmt.Errorf("server: %s", explain(r.err, "the client", serverCred))
	}
	fmt.Fprintf(out, "server     verified client %s, %v\n", r.peer, &n)
	fmt.Fprintf(out, "stats client: %s\n", formatStats(c.Stats()))
	fmt.Fprintf(out, "stats server: %s\n", formatStats(srv.Stats()))
	return nil
}

// runListener is the listener half: it prints its identity and serves
// clients that present a trusted certificate.
func runListener(ctx context.Context, out io.Writer, cfg *config) error {
	cred, err := cfg.id.Credential("echo-server")
	if err != nil {
		return err
	}
	reg := conn.NewRegistration("echo")
	defer reg.Close()
	ln, err := conn.Listen(reg, cfg.listen, cfg.configuration(), cred, conn.WithLogger(cfg.log))
	if err != nil {
		return fmt.Errorf("listen on %s: %s", cfg.listen, explain(err, cfg.listen, cred))
	}
	defer ln.Close()
	fmt.Fprintf(out, "listening on %s\n", ln.Addr())
	fmt.Fprintf(out, "server identity %s\n", cred.Identity())
	fmt.Fprintf(out, "trusting clients %v\n", &cfg.id.Trust)
	for {
		c, err := ln.Accept(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil // interrupted
			}
			return err
		}
		remote, _ := c.RemoteAddr()
		t := time.Now()
		if err := c.Accept(ctx); err != nil {
			if ctx.Err() != nil {
				return nil // interrupted
			}
			// A client we do not trust, or one that does not trust us: not
			// this listener's failure, so it keeps waiting for a client.
			fmt.Fprintf(out, "client %v: handshake failed: %s\n", remote, explain(err, remote.String(), cred))
			continue
		}
		peer := certverify.HashOf(c.RemoteCertificate().Raw)
		var n served
		err = serve(ctx, c, &n)
		if err != nil {
			fmt.Fprintf(out, "client %v (%s): %s\n", remote, peer, explain(err, remote.String(), cred))
		} else {
			fmt.Fprintf(out, "client %v (%s): %v in %v\n", remote, peer, &n, round(time.Since(t)))
		}
		fmt.Fprintf(out, "stats server: %s\n", formatStats(c.Stats()))
		if !cfg.keep {
			return err
		}
	}
}

// runClient is the client half.
func runClient(ctx context.Context, out io.Writer, cfg *config) error {
	host, port, err := splitAddr(cfg.connect)
	if err != nil {
		return err
	}
	cred, err := cfg.id.Credential("echo-client")
	if err != nil {
		return err
	}
	reg := conn.NewRegistration("echo")
	defer reg.Close()
	fmt.Fprintf(out, "client identity %s\n", cred.Identity())
	c, err := conn.New(reg, cred, conn.WithLogger(cfg.log))
	if err != nil {
		return err
	}
	if err := runSteps(ctx, &printer{out: out}, c, cfg, host, port); err != nil {
		return fmt.Errorf("%s", explain(err, cfg.connect, cred))
	}
	fmt.Fprintf(out, "stats client: %s\n", formatStats(c.Stats()))
	return nil
}

// explain is cli.Explain for a connection made with cred.
func explain(err error, addr string, cred *certverify.Credential) string {
	return cli.Explain(err, addr, cred.Identity())
}
