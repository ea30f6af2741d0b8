// Package conn is quicconn's Connection API: QUIC connections with an
// explicit lifecycle, on top of github.com/quic-go/quic-go, after the
// Connection API of a Rust wrapper over msquic.
//
// A Registration owns connections and listeners. A client Connection is
// made by New in state Open and connected by Start (or StartEarly); a server
// Connection comes from Listener.Accept in state Connecting. Either then
// moves through Connected, Shutdown and ShutdownComplete:
//
//	Open ──Start──▶ Connecting ──handshake (confirmed)──▶ Connected ──close──▶ Shutdown ──▶ ShutdownComplete
//	  │                 │   ▲                                 │ Migrate               ▲
//	  └──StartEarly─────┘   └─ 0-RTT: streams, datagrams ─┘   └─ same state ─┘      │
//	                    └────────────── handshake fails, trust revoked ────────────┘
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
//	operation                 Open          Connecting             Connected               Shutdown / ShutdownComplete
//	Start                     handshakes    waits                  nil                     connection's error
//	StartEarly                handshakes¹   waits                  nil                     connection's error
//	Accept                    waits         waits                  nil                     connection's error
//	ReceiveRemoteCertificate  waits         cert once accepted     cert                    cert if stored, else error
//	OpenOutboundStream        ErrNotStarted waits (opens¹)         opens (waits at limit)  connection's error
//	AcceptInbound(Uni)Stream  ErrNotStarted waits (accepts²)       next stream, or waits   connection's error
//	ReceiveDatagram           ErrNotStarted waits (receives²)      next datagram, or waits connection's error
//	SendDatagram              ErrNotStarted ErrNotStarted (sends¹) sends                   connection's error
//	Shutdown                  ErrNotStarted ErrNotStarted          closes                  nil
//	ShutdownAndWait           ErrNotStarted waits, then closes     closes and waits        nil if closed locally
//	Migrate                   ErrNotStarted ErrNotStarted          moves (client)³         connection's error
//	WatchShutdown             channel closed at ShutdownComplete, in every state
//
//	¹ a client after StartEarly returned with 0-RTT keys: it returns as soon as
//	  early data may be sent, and opening streams and sending datagrams then
//	  work while Connecting (see StartEarly on replay).
//	² a server with Settings.Allow0RTT: what the client sent as 0-RTT is handed
//	  out while Connecting.
//	³ a server connection returns ErrServerMigration.
//
// "Connection's error" is the *errors.ConnectionError that Err returns; it
// matches errors.ErrConnectionLost, and stream and datagram operations on a
// lost connection wrap the very same value. Every wait ends with the
// context's error when the context ends first, and a result that is ready
// wins over an ended context.
//
// # Identity
//
// Identity is certificate pinning (package certverify): each side presents a
// certificate and verifies the peer's by hash, SPKI hash, ed25519
// endorsement or CA roots, and a credential with none of them rejects every
// peer. Trust is live: a certverify.Credential's Trust and Untrust methods
// may be called at any time, and an Untrust call closes, within
// milliseconds, every live connection whose peer no longer passes — its Err
// is a ConnectionError with Reason TrustRevoked, and the peer sees an
// application close with CodeTrustRevoked. RemoteIdentity names the peer.
//
// A client whose certificate the server asked for is Connected only once the
// server has confirmed the handshake, one round trip after it completed, so
// that a server's rejection makes Start fail with errors.ErrBadCertificate
// and a *errors.CertificateError whose Remote is set, instead of succeeding
// and then losing what was sent. quic-go does not report confirmation: the
// client waits for the session ticket or the NEW_TOKEN frame that a server
// sends with HANDSHAKE_DONE, at most three round trips (and at least 25ms)
// for a server that sends neither. Settings.SkipHandshakeConfirmation saves
// the round trip; a rejection then arrives as a close after Start returned.
//
// # Reconnecting and moving
//
// Clients keep the servers' session tickets in their Registration and
// resume the TLS session when they connect to the same server address
// again (Resumed; Settings.DisableResumption), which saves the certificate
// exchange; a resumed handshake is checked against the current trust on
// both sides. With Settings.Allow0RTT on both sides, StartEarly sends on a
// resumed session before the handshake completes (0-RTT), saving a round
// trip. Migrate moves a client to a new socket; the server follows it, and
// a NAT rebinding, by itself. Streams have priorities (SetPriority).
//
// # Logging and goroutines
//
// Lifecycle events go to a log/slog logger (WithLogger; slog.Default when
// none is given): Debug for connects and shutdowns, Warn for rejected or
// revoked peer certificates. Key material is never logged.
//
// Streams are package stream's types. A ReceiveDatagram that is waiting
// takes datagrams straight from quic-go; once none has been waiting for a
// millisecond, they go to a bounded queue (package dgram) whose drops Stats
// counts.
//
// An idle connection runs no goroutine of its own but, with datagrams
// enabled and no ReceiveDatagram waiting for a millisecond, one that drains
// received datagrams into that queue; a server connection has one
// more during its handshake, and a 0-RTT client one until its handshake
// completes. All have exited when the connection reaches ShutdownComplete.
// A Listener runs 16 goroutines that move new connections from quic-go's
// accept queue to its backlog, so that a storm of handshakes is not refused
// while the machine is busy; they exit with Close.
package conn
