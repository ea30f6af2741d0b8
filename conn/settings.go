package conn

import (
	"fmt"
	"math"
	"time"

	"github.com/quic-go/quic-go"
	qerr "github.com/quicconn/quicconn/errors"
)

// quicDefaultConnectionWindow is quic-go's default cap on the connection's
// receive window.
const quicDefaultConnectionWindow = 15 << 20

// Library defaults for zero Settings fields.
const (
	DefaultIdleTimeout      = 30 * time.Second
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultPeerStreamCount  = 100
	DefaultDatagramQueueLen = 128
	DefaultMaxMessageSize   = 16 << 20
)

// Settings tunes a connection. The zero value of every field selects the
// library default, so Settings{} is a valid configuration.
type Settings struct {
	// IdleTimeout closes a connection on which nothing was received for
	// this long (the smaller of both sides' values applies). 0 means 30s.
	IdleTimeout time.Duration
	// HandshakeTimeout is the whole budget for the handshake; a handshake
	// that has not completed by then ends with reason HandshakeTimeout.
	// 0 means 10s.
	HandshakeTimeout time.Duration
	// KeepAlive sends a PING at this period so that an idle connection does
	// not time out; it must be shorter than the idle timeout. 0 turns
	// keep-alives off.
	KeepAlive time.Duration

	// PeerBidiStreamCount and PeerUniStreamCount bound the streams of each
	// kind the peer may have open at once. 0 means 100.
	PeerBidiStreamCount, PeerUniStreamCount int64

	// DatagramReceiveEnabled advertises support for QUIC datagrams
	// (RFC 9221) and queues the peer's datagrams for ReceiveDatagram. As in
	// quic-go, a side that does not enable datagrams cannot send them
	// either: SendDatagram then fails with ErrDatagramDenied.
	DatagramReceiveEnabled bool
	// DatagramQueueLen bounds the queue of received datagrams; when it is
	// full the oldest datagram is dropped and counted in Stats. 0 means 128.
	DatagramQueueLen int

	// StreamReceiveWindow and ConnectionReceiveWindow cap the flow-control
	// windows for receiving on one stream and on the whole connection.
	// 0 keeps quic-go's defaults (6 MB and 15 MB, auto-tuned from 512 KB),
	// except that a StreamReceiveWindow above 15 MB raises the connection's
	// to 1.5 times it. A ConnectionReceiveWindow smaller than the
	// StreamReceiveWindow is refused.
	StreamReceiveWindow, ConnectionReceiveWindow uint64

	// Allow0RTT enables early data (0-RTT): a server accepts it and hands
	// out the streams and datagrams that come with it while the connection
	// is still Connecting; a client may send it after StartEarly, when it
	// holds a ticket from the server that allows it. Early data can be
	// replayed by an attacker: read StartEarly before turning it on. Both
	// sides must set it.
	Allow0RTT bool

	// DisableResumption turns TLS session resumption off. By default a
	// client keeps the session tickets that servers send, in its
	// Registration, and offers one when it connects to the same server
	// address again, which saves the certificate exchange and its
	// signatures (see Connection.Resumed); a server issues tickets. A
	// resumed handshake is still checked against the current trust on both
	// sides.
	DisableResumption bool

	// SkipHandshakeConfirmation makes a client's Start return as soon as its
	// handshake completes, one round trip sooner than by default, which
	// waits until the server has confirmed the handshake when the client
	// presented a certificate. The price: a server that rejects the client's
	// certificate is learned of only after Start returned, as a close whose
	// error matches errors.ErrBadCertificate with Remote set, and what was
	// sent meanwhile is lost. Servers ignore it.
	SkipHandshakeConfirmation bool

	// MaxMessageSize bounds the messages of message streams
	// (OpenSendStream and stream.MessageReader). 0 means 16 MiB; at most
	// 2^32-1, the largest length the 4-byte prefix holds.
	MaxMessageSize int
}

// Configuration is what a connection or listener is started with: the
// application protocols it offers (ALPN) and its Settings. A Configuration
// may be shared by any number of connections and listeners; do not modify
// it once it is in use.
type Configuration struct {
	// ALPN lists the application protocols, in order of preference. QUIC
	// requires at least one.
	ALPN []string
	// Settings tunes the connections.
	Settings Settings
}

// NewConfiguration validates alpn and s and returns a Configuration. Invalid
// values are reported as a *errors.ConfigError naming the field.
func NewConfiguration(alpn []string, s Settings) (*Configuration, error) {
	c := &Configuration{ALPN: append([]string(nil), alpn...), Settings: s}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// DefaultConfiguration returns a Configuration with the given ALPN values
// and default Settings. It does not validate alpn; Start and Listen do.
func DefaultConfiguration(alpn ...string) *Configuration {
	return &Configuration{ALPN: alpn}
}

func (c *Configuration) validate() error {
	if c == nil {
		return &qerr.ConfigError{Field: "Configuration", Reason: "is nil"}
	}
	if len(c.ALPN) == 0 {
		return &qerr.ConfigError{Field: "ALPN", Reason: "at least one protocol is required"}
	}
	for i, p := range c.ALPN {
		if len(p) == 0 || len(p) > 255 {
			return &qerr.ConfigError{Field: fmt.Sprintf("ALPN[%d]", i), Reason: fmt.Sprintf("must be 1 to 255 bytes, is %d", len(p))}
		}
	}
	s := &c.Settings
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"Settings.IdleTimeout", s.IdleTimeout},
		{"Settings.HandshakeTimeout", s.HandshakeTimeout},
		{"Settings.KeepAlive", s.KeepAlive},
	} {
		if d.v < 0 {
			return &qerr.ConfigError{Field: d.name, Reason: fmt.Sprintf("must not be negative, is %v", d.v)}
		}
	}
	for _, n := range []struct {
		name string
		v    int64
	}{
		{"Settings.PeerBidiStreamCount", s.PeerBidiStreamCount},
		{"Settings.PeerUniStreamCount", s.PeerUniStreamCount},
		{"Settings.DatagramQueueLen", int64(s.DatagramQueueLen)},
		{"Settings.MaxMessageSize", int64(s.MaxMessageSize)},
	} {
		if n.v < 0 {
			return &qerr.ConfigError{Field: n.name, Reason: fmt.Sprintf("must not be negative, is %d", n.v)}
		}
	}
	for _, n := range []struct {
		name string
		v    int64
	}{
		{"Settings.PeerBidiStreamCount", s.PeerBidiStreamCount},
		{"Settings.PeerUniStreamCount", s.PeerUniStreamCount},
	} {
		if n.v > 1<<60 {
			return &qerr.ConfigError{Field: n.name, Reason: fmt.Sprintf("must be at most 2^60, is %d", n.v)}
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"Settings.IdleTimeout", s.IdleTimeout},
		{"Settings.HandshakeTimeout", s.HandshakeTimeout},
		{"Settings.KeepAlive", s.KeepAlive},
	} {
		if d.v > 0 && d.v < time.Millisecond {
			return &qerr.ConfigError{Field: d.name, Reason: fmt.Sprintf("must be 0 (the default) or at least 1ms, is %v: was a unit forgotten?", d.v)}
		}
	}
	if s.KeepAlive != 0 && s.KeepAlive >= s.idleTimeout() {
		return &qerr.ConfigError{Field: "Settings.KeepAlive", Reason: fmt.Sprintf("must be shorter than the idle timeout (%v), is %v: keep-alives must arrive before the connection times out", s.idleTimeout(), s.KeepAlive)}
	}
	if uint64(s.MaxMessageSize) > math.MaxUint32 {
		return &qerr.ConfigError{Field: "Settings.MaxMessageSize", Reason: fmt.Sprintf("must be at most 2^32-1, the largest length a message prefix holds, is %d", s.MaxMessageSize)}
	}
	if s.ConnectionReceiveWindow != 0 && s.ConnectionReceiveWindow < s.StreamReceiveWindow {
		return &qerr.ConfigError{Field: "Settings.ConnectionReceiveWindow", Reason: fmt.Sprintf("must not be smaller than StreamReceiveWindow (%d), is %d: one stream could never use its window", s.StreamReceiveWindow, s.ConnectionReceiveWindow)}
	}
	return nil
}

func (s *Settings) idleTimeout() time.Duration { return or(s.IdleTimeout, DefaultIdleTimeout) }

func (s *Settings) handshakeTimeout() time.Duration {
	return or(s.HandshakeTimeout, DefaultHandshakeTimeout)
}

func (s *Settings) datagramQueueLen() int { return or(s.DatagramQueueLen, DefaultDatagramQueueLen) }

func (s *Settings) maxMessageSize() int { return or(s.MaxMessageSize, DefaultMaxMessageSize) }

func or[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// handshakeTimerMargin puts quic-go's handshake timer after the library's
// budget, so that the library's, which names the address, fires first.
const handshakeTimerMargin = time.Second

// quicConfig translates the settings into quic-go's. The handshake budget is
// enforced by this package; quic-go's own handshake timers are set longer,
// so that a slow handshake always ends with the same reason and message.
func (s *Settings) quicConfig(o *options) *quic.Config {
	qc := &quic.Config{
		HandshakeIdleTimeout:  s.handshakeTimeout() + handshakeTimerMargin,
		MaxIdleTimeout:        s.idleTimeout(),
		KeepAlivePeriod:       s.KeepAlive,
		MaxIncomingStreams:    or(s.PeerBidiStreamCount, DefaultPeerStreamCount),
		MaxIncomingUniStreams: or(s.PeerUniStreamCount, DefaultPeerStreamCount),
		EnableDatagrams:       s.DatagramReceiveEnabled,
		Allow0RTT:             s.Allow0RTT,
		// QUIC promises only 1200-byte UDP payloads (RFC 9000, section 14).
		// quic-go starts at 1280 and falls back only on EMSGSIZE, so a path
		// that silently drops larger packets would never complete a
		// handshake; path MTU discovery grows the size from here.
		InitialPacketSize: 1200,
	}
	if w := s.StreamReceiveWindow; w != 0 {
		qc.MaxStreamReceiveWindow = w
		qc.InitialStreamReceiveWindow = min(w, 512<<10)
	}
	if w := s.ConnectionReceiveWindow; w != 0 {
		qc.MaxConnectionReceiveWindow = w
		qc.InitialConnectionReceiveWindow = min(w, 512<<10)
	} else if s.StreamReceiveWindow > quicDefaultConnectionWindow {
		// A stream window beyond quic-go's connection window could never be
		// used: the connection's grows with it, with room for other streams.
		qc.MaxConnectionReceiveWindow = s.StreamReceiveWindow + s.StreamReceiveWindow/2
	}
	if o.qlogDir != "" {
		qc.Tracer = qlogTracer(o.qlogDir)
	}
	return qc
}
