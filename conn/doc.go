// Package conn is quicconn's Connection API: QUIC connections with an
// explicit lifecycle, on top of github.com/quic-go/quic-go.
//
// A Registration owns connections and listeners. A client Connection is
// made by New in state Open and connected by Start; a server Connection
// comes from Listener.Accept in state Connecting. Either then moves through
// Connected, Shutdown and ShutdownComplete:
//
//	Open ──Start──▶ Connecting ──handshake──▶ Connected ──close──▶ Shutdown ──▶ ShutdownComplete
//	                    │                                             ▲
//	                    └──────────── handshake fails ────────────────┘
//
// Every blocking method takes a context.Context and returns when it ends,
// when the operation completes, or when the connection shuts down, with an
// error from package errors (import it as qerr) that names the operation and
// matches the taxonomy's sentinels with errors.Is:
//
//	reg := conn.NewRegistration("app")
//	defer reg.Close()
//	c, _ := conn.New(reg, cred)
//	if err := c.Start(ctx, conn.DefaultConfiguration("myproto"), "127.0.0.1", 4433); err != nil {
//		var ce *qerr.ConnectionError
//		if errors.As(err, &ce) { /* ce.Reason says why */ }
//	}
//	s, _ := c.OpenOutboundStream(ctx, stream.Bidirectional, false)
//
// Identity is certificate pinning (package certverify): each side presents a
// certificate and verifies the peer's by hash, by ed25519 endorsement or by
// CA roots. Streams are package stream's types; received datagrams wait in a
// bounded queue (package dgram) whose drops Stats counts.
//
// Each connection runs one goroutine for its lifecycle and, with datagrams
// enabled, one that drains received datagrams; both have exited when the
// connection reaches ShutdownComplete.
package conn
