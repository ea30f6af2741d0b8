package conn_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"time"

	"github.com/quicconn/quicconn/certverify"
	"github.com/quicconn/quicconn/conn"
	qerr "github.com/quicconn/quicconn/errors"
	"github.com/quicconn/quicconn/stream"
)

// credentials returns a server and a client credential pinned to each
// other by certificate hash.
func credentials() (server, client *certverify.Credential) {
	server, err := certverify.GenerateSelfSigned([]string{"server.example"}, nil)
	if err != nil {
		log.Fatal(err)
	}
	client, err = certverify.GenerateSelfSigned([]string{"client.example"}, nil)
	if err != nil {
		log.Fatal(err)
	}
	server.TrustHashes(certverify.HashOf(client.Certificate.Certificate[0]))
	client.TrustHashes(certverify.HashOf(server.Certificate.Certificate[0]))
	return server, client
}

// connect returns a Connected client and server on the loopback interface,
// both owned by reg.
func connect(ctx context.Context, reg *conn.Registration, cfg *conn.Configuration) (client, server *conn.Connection) {
	serverCred, clientCred := credentials()
	ln, err := conn.Listen(reg, "127.0.0.1:0", cfg, serverCred)
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close() // accepted connections outlive their listener
	client, err = conn.New(reg, clientCred)
	if err != nil {
		log.Fatal(err)
	}
	started := make(chan error, 1)
	go func() { started <- client.Start(ctx, cfg, "127.0.0.1", uint16(ln.Addr().(*net.UDPAddr).Port)) }()
	server, err = ln.Accept(ctx)
	if err != nil {
		log.Fatal(err)
	}
	if err := server.Accept(ctx); err != nil {
		log.Fatal(err)
	}
	if err := <-started; err != nil {
		log.Fatal(err)
	}
	return client, server
}

// A client connection is made in state Open and connected by Start.
func ExampleNew() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	reg := conn.NewRegistration("example")
	defer reg.Close() // shuts down every connection and listener of reg

	serverCred, clientCred := credentials()
	cfg := conn.DefaultConfiguration("example/1")
	ln, err := conn.Listen(reg, "127.0.0.1:0", cfg, serverCred)
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()

	c, err := conn.New(reg, clientCred)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(c.State())
	_, err = c.OpenOutboundStream(ctx, stream.Bidirectional, false)
	fmt.Println(errors.Is(err, qerr.ErrNotStarted))

	port := uint16(ln.Addr().(*net.UDPAddr).Port)
	if err := c.Start(ctx, cfg, "127.0.0.1", port); err != nil {
		log.Fatal(err)
	}
	fmt.Println(c.State(), c.NegotiatedALPN())

	// The server's certificate has been verified against the pinned hash.
	cert := c.RemoteCertificate()
	fmt.Println(certverify.HashOf(cert.Raw).String() == serverCred.Identity())
	// Output:
	// Open
	// true
	// Connected example/1
	// true
}

// A listener hands out server-side connections as their handshake begins;
// Connection.Accept waits for it to complete.
func ExampleListen() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	reg := conn.NewRegistration("example")
	defer reg.Close()

	serverCred, clientCred := credentials()
	cfg := conn.DefaultConfiguration("example/1")
	ln, err := conn.Listen(reg, "127.0.0.1:0", cfg, serverCred)
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()

	clientDone := make(chan error, 1)
	go func() { // a client
		c, err := conn.New(reg, clientCred)
		if err != nil {
			clientDone <- err
			return
		}
		clientDone <- c.Start(ctx, cfg, "127.0.0.1", uint16(ln.Addr().(*net.UDPAddr).Port))
	}()

	sc, err := ln.Accept(ctx)
	if err != nil {
		log.Fatal(err)
	}
	if err := sc.Accept(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println(sc.State(), sc.NegotiatedALPN())
	// The client's certificate passed the server credential's policy.
	peer := certverify.HashOf(sc.RemoteCertificate().Raw)
	fmt.Println(peer.String() == clientCred.Identity())
	fmt.Println(<-clientDone)
	// Output:
	// Connected example/1
	// true
	// <nil>
}

// A bidirectional stream is an io.ReadWriteCloser whose Close sends FIN.
func ExampleConnection_OpenOutboundStream() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	reg := conn.NewRegistration("example")
	defer reg.Close()
	client, server := connect(ctx, reg, conn.DefaultConfiguration("example/1"))

	go func() { // the server echoes one stream
		s, err := server.AcceptInboundStream(ctx)
		if err != nil {
			return
		}
		io.Copy(s, s)
		s.Close()
	}()

	s, err := client.OpenOutboundStream(ctx, stream.Bidirectional, false)
	if err != nil {
		log.Fatal(err)
	}
	s.Write([]byte("ping"))
	s.Close() // FIN: the server's io.Copy ends
	reply, err := io.ReadAll(s)
	fmt.Printf("%s %v\n", reply, err)
	// Output: ping <nil>
}

// A message stream carries length-prefixed messages; the peer reads them with
// a stream.MessageReader.
func ExampleConnection_OpenSendStream() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	reg := conn.NewRegistration("example")
	defer reg.Close()
	client, server := connect(ctx, reg, conn.DefaultConfiguration("example/1"))

	ss, err := client.OpenSendStream(ctx)
	if err != nil {
		log.Fatal(err)
	}
	for _, m := range []string{"one", "two", "three"} {
		ss.Send(ctx, []byte(m))
	}
	ss.Close()

	rs, err := server.AcceptInboundUniStream(ctx)
	if err != nil {
		log.Fatal(err)
	}
	r := stream.NewMessageReader(rs, 0)
	for {
		m, err := r.ReadMessage()
		if err == io.EOF {
			break
		}
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s\n", m)
	}
	// Output:
	// one
	// two
	// three
}

// Datagrams need Settings.DatagramReceiveEnabled on both sides. They are
// unreliable: a real program must cope with loss.
func ExampleConnection_SendDatagram() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	reg := conn.NewRegistration("example")
	defer reg.Close()
	cfg, err := conn.NewConfiguration([]string{"example/1"}, conn.Settings{DatagramReceiveEnabled: true})
	if err != nil {
		log.Fatal(err)
	}
	client, server := connect(ctx, reg, cfg)

	fmt.Println(client.MaxDatagramSize() > 1000)
	if err := client.SendDatagram([]byte("tick")); err != nil {
		log.Fatal(err)
	}
	b, err := server.ReceiveDatagram(ctx)
	fmt.Printf("%s %v\n", b, err)

	err = client.SendDatagram(make([]byte, client.MaxDatagramSize()+1))
	var tooBig *qerr.DatagramTooBigError
	fmt.Println(errors.As(err, &tooBig) && tooBig.Max == client.MaxDatagramSize())
	// Output:
	// true
	// tick <nil>
	// true
}

// ShutdownAndWait closes with an application code and waits for
// ShutdownComplete; the peer learns the code from Err.
func ExampleConnection_ShutdownAndWait() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	reg := conn.NewRegistration("example")
	defer reg.Close()
	client, server := connect(ctx, reg, conn.DefaultConfiguration("example/1"))

	if err := client.ShutdownAndWait(ctx, 42); err != nil {
		log.Fatal(err)
	}
	fmt.Println(client.State())

	<-server.WatchShutdown()
	var ce *qerr.ConnectionError
	if errors.As(server.Err(), &ce) {
		fmt.Println(ce.Reason == qerr.ShutdownByPeer, ce.Code)
	}
	_, err := server.AcceptInboundStream(ctx)
	fmt.Println(errors.Is(err, qerr.ErrConnectionLost))
	// Output:
	// ShutdownComplete
	// true 42
	// true
}

// A client that pins another hash refuses the server: Start fails with a
// *errors.CertificateError that says which rule failed.
func ExampleConnection_Start_untrustedServer() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	reg := conn.NewRegistration("example")
	defer reg.Close()

	serverCred, _ := credentials()
	stranger, err := certverify.GenerateSelfSigned([]string{"client.example"}, nil)
	if err != nil {
		log.Fatal(err)
	}
	stranger.TrustHashes(certverify.CertHash{1}) // not the server's hash
	cfg := conn.DefaultConfiguration("example/1")
	ln, err := conn.Listen(reg, "127.0.0.1:0", cfg, serverCred)
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()

	// A rejected certificate is logged at Warn level; keep it out of the way.
	c, err := conn.New(reg, stranger, conn.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		log.Fatal(err)
	}
	err = c.Start(ctx, cfg, "127.0.0.1", uint16(ln.Addr().(*net.UDPAddr).Port))
	var certErr *qerr.CertificateError
	if errors.As(err, &certErr) {
		fmt.Println(certErr.Reason)
		fmt.Println(certverify.CertHash(certErr.Hash).String() == serverCred.Identity())
	}
	fmt.Println(errors.Is(err, qerr.ErrBadCertificate), c.State() >= conn.Shutdown)
	// Output:
	// certificate hash not trusted
	// true
	// true true
}

// A client that reconnects to a server it has talked to before resumes the
// TLS session and, with Allow0RTT on both sides, sends its first request
// before the handshake completes. Early data can be replayed by an
// attacker, so only an idempotent request (here a read) goes early.
func ExampleConnection_StartEarly() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	reg := conn.NewRegistration("example") // holds the session tickets
	defer reg.Close()

	serverCred, clientCred := credentials()
	cfg, err := conn.NewConfiguration([]string{"example/1"}, conn.Settings{Allow0RTT: true})
	if err != nil {
		log.Fatal(err)
	}
	ln, err := conn.Listen(reg, "127.0.0.1:0", cfg, serverCred)
	if err != nil {
		log.Fatal(err)
	}
	port := uint16(ln.Addr().(*net.UDPAddr).Port)
	go func() { // answers "GET" requests, early or not
		for {
			s, err := ln.Accept(ctx)
			if err != nil {
				return
			}
			go func() {
				st, err := s.AcceptInboundStream(ctx)
				if err != nil {
					return
				}
				req, _ := io.ReadAll(st)
				fmt.Fprintf(st, "answer to %s", req)
				st.Close()
			}()
		}
	}()

	for i := range 2 {
		c, err := conn.New(reg, clientCred)
		if err != nil {
			log.Fatal(err)
		}
		if err := c.StartEarly(ctx, cfg, "127.0.0.1", port); err != nil {
			log.Fatal(err)
		}
		st, err := c.OpenOutboundStream(ctx, stream.Bidirectional, false)
		if err != nil {
			log.Fatal(err)
		}
		st.WriteChunks([][]byte{[]byte("GET /status")}, true)
		answer, err := io.ReadAll(st)
		if err != nil {
			log.Fatal(err)
		}
		// Start on a Connecting connection waits for the handshake, after
		// which Used0RTT says whether the server took the early request.
		if err := c.Start(ctx, cfg, "127.0.0.1", port); err != nil {
			log.Fatal(err)
		}
		fmt.Printf("connection %d: %s (resumed %v, 0-RTT %v)\n", i+1, answer, c.Resumed(), c.Used0RTT())
		c.ShutdownAndWait(ctx, 0)
	}
	// Output:
	// connection 1: answer to GET /status (resumed false, 0-RTT false)
	// connection 2: answer to GET /status (resumed true, 0-RTT true)
}
