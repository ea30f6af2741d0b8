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
// What each operation does in each state:
//
//	operation                 Open          Connecting           Connected               Shutdown / ShutdownComplete
//	Start                     handshakes    waits                nil                     connection's error
//	Accept                    waits         waits                nil                     connection's error
//	ReceiveRemoteCertificate  waits         cert once accepted   cert                    cert if stored, else error
//	OpenOutboundStream        ErrNotStarted waits                opens (waits at limit)  connection's error
//	AcceptInbound(Uni)Stream  ErrNotStarted waits                next stream, or waits   connection's error
//	ReceiveDatagram           ErrNotStarted waits                next datagram, or waits connection's error
//	SendDatagram              ErrNotStarted ErrNotStarted        sends                   connection's error
//	Shutdown                  ErrNotStarted ErrNotStarted        closes                  nil
//	ShutdownAndWait           ErrNotStarted waits, then closes   closes and waits        nil if closed locally
//	WatchShutdown             channel closed at ShutdownComplete, in every state
//
// "Connection's error" is the *errors.ConnectionError that Err returns; it
// matches errors.ErrConnectionLost. Every wait ends with the context's error
// when the context ends first.
//
// Lifecycle events go to a log/slog logger (WithLogger; slog.Default when
// none is given): Debug for connects and shutdowns, Warn for rejected peer
// certificates. Key material is never logged.
//
// Identity is certificate pinning (package certverify): each side presents a
// certificate and verifies the peer's by hash, by ed25519 endorsement or by
// CA roots. Streams are package stream's types; received datagrams wait in a
// bounded queue (package dgram) whose drops Stats counts.
//
// An idle connection runs no goroutine of its own but, with datagrams
// enabled, one that drains received datagrams; a server connection has one
// more during its handshake. All have exited when the connection reaches
// ShutdownComplete. A Listener runs one goroutine that moves new connections
// from quic-go's accept queue to its backlog; it exits with Close.
package conn
