package conn_test

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/quicconn/quicconn/certverify"
	"github.com/quicconn/quicconn/conn"
	"github.com/quicconn/quicconn/conntest"
	qerr "github.com/quicconn/quicconn/errors"
	"github.com/quicconn/quicconn/stream"
)

// The fixed signatures of DESIGN.md, written out with their types: other
// code is written against them, so a change to one must fail to compile
// here first.
var (
	_ func(string) *conn.Registration                            = conn.NewRegistration
	_ func(*conn.Registration) error                             = (*conn.Registration).Close
	_ func(*conn.Registration, context.Context) error            = (*conn.Registration).WaitIdle
	_ func([]string, conn.Settings) (*conn.Configuration, error) = conn.NewConfiguration
	_ func(...string) *conn.Configuration                        = conn.DefaultConfiguration
	_ func(net.PacketConn) conn.Option                           = conn.WithPacketConn
	_ func(string) conn.Option                                   = conn.WithLocalAddr
	_ func(io.Writer) conn.Option                                = conn.WithKeyLog
	_ func(*slog.Logger) conn.Option                             = conn.WithLogger
	_ func(string) conn.Option                                   = conn.WithQlogDir

	_ func(*conn.Registration, string, *conn.Configuration, *certverify.Credential, ...conn.Option) (*conn.Listener, error) = conn.Listen
	_ func(*conn.Listener, context.Context) (*conn.Connection, error)                                                       = (*conn.Listener).Accept
	_ func(*conn.Listener) net.Addr                                                                                         = (*conn.Listener).Addr
	_ func(*conn.Listener) error                                                                                            = (*conn.Listener).Close

	_ func(*conn.Registration, *certverify.Credential, ...conn.Option) (*conn.Connection, error) = conn.New
	_ func(*conn.Connection, context.Context, *conn.Configuration, string, uint16) error         = (*conn.Connection).Start
	_ func(*conn.Connection, context.Context) error                                              = (*conn.Connection).Accept
	_ func(*conn.Connection) conn.State                                                          = (*conn.Connection).State
	_ func(*conn.Connection, context.Context, stream.Type, bool) (*stream.Stream, error)         = (*conn.Connection).OpenOutboundStream
	_ func(*conn.Connection, context.Context) (*stream.SendStream, error)                        = (*conn.Connection).OpenSendStream
	_ func(*conn.Connection, context.Context) (*stream.Stream, error)                            = (*conn.Connection).AcceptInboundStream
	_ func(*conn.Connection, context.Context) (*stream.ReadStream, error)                        = (*conn.Connection).AcceptInboundUniStream
	_ func(*conn.Connection, []byte) error                                                       = (*conn.Connection).SendDatagram
	_ func(*conn.Connection, context.Context) ([]byte, error)                                    = (*conn.Connection).ReceiveDatagram
	_ func(*conn.Connection) int                                                                 = (*conn.Connection).MaxDatagramSize
	_ func(*conn.Connection) (net.Addr, error)                                                   = (*conn.Connection).LocalAddr
	_ func(*conn.Connection) (net.Addr, error)                                                   = (*conn.Connection).RemoteAddr
	_ func(*conn.Connection) *x509.Certificate                                                   = (*conn.Connection).RemoteCertificate
	_ func(*conn.Connection, context.Context) (*x509.Certificate, error)                         = (*conn.Connection).ReceiveRemoteCertificate
	_ func(*conn.Connection) string                                                              = (*conn.Connection).NegotiatedALPN
	_ func(*conn.Connection, uint64) error                                                       = (*conn.Connection).Shutdown
	_ func(*conn.Connection, context.Context, uint64) error                                      = (*conn.Connection).ShutdownAndWait
	_ func(*conn.Connection) <-chan struct{}                                                     = (*conn.Connection).WatchShutdown
	_ func(*conn.Connection) error                                                               = (*conn.Connection).Err
	_ func(*conn.Connection) conn.Stats                                                          = (*conn.Connection).Stats
	_ func(*conn.Connection) (certverify.CertHash, bool)                                         = (*conn.Connection).RemoteIdentity
	_ func(*conn.Connection, context.Context, *conn.Configuration, string, uint16) error         = (*conn.Connection).StartEarly
	_ func(*conn.Connection) bool                                                                = (*conn.Connection).Used0RTT
	_ func(*conn.Connection) bool                                                                = (*conn.Connection).Resumed
	_ func(*conn.Connection, context.Context, ...conn.Option) error                              = (*conn.Connection).Migrate
	_ func(*stream.Stream, int8, bool)                                                           = (*stream.Stream).SetPriority
	_ func(*stream.WriteStream, int8, bool)                                                      = (*stream.WriteStream).SetPriority
	_ func(*stream.SendStream, int8, bool)                                                       = (*stream.SendStream).SetPriority
	_ func(io.Writer, int) *stream.MessageWriter                                                 = stream.NewMessageWriter
	_ func(*stream.MessageWriter, []byte) error                                                  = (*stream.MessageWriter).WriteMessage

	_ io.ReadWriteCloser                                             = (*stream.Stream)(nil)
	_ func(*stream.Stream) int64                                     = (*stream.Stream).ID
	_ func(*stream.Stream, [][]byte, bool) (int, error)              = (*stream.Stream).WriteChunks
	_ func(*stream.Stream, context.Context) ([]byte, error)          = (*stream.Stream).ReadChunk
	_ func(*stream.Stream, uint64) error                             = (*stream.Stream).CancelWrite
	_ func(*stream.Stream, uint64) error                             = (*stream.Stream).CancelRead
	_ func(*stream.Stream, time.Time) error                          = (*stream.Stream).SetDeadline
	_ func(*stream.Stream) (*stream.ReadStream, *stream.WriteStream) = (*stream.Stream).Split
	_ func(*stream.SendStream, context.Context, []byte) error        = (*stream.SendStream).Send
	_ func(*stream.SendStream) error                                 = (*stream.SendStream).Close
	_ func(io.Reader, int) *stream.MessageReader                     = stream.NewMessageReader
	_ func(*stream.MessageReader) ([]byte, error)                    = (*stream.MessageReader).ReadMessage
	_ func(*stream.ReadStream, context.Context) ([]byte, error)      = (*stream.ReadStream).ReadChunk
	_ func(*stream.WriteStream, [][]byte, bool) (int, error)         = (*stream.WriteStream).WriteChunks

	_ func([]byte) certverify.CertHash                                             = certverify.HashOf
	_ func(string) (certverify.CertHash, error)                                    = certverify.ParseCertHash
	_ func([]string, []ed25519.PrivateKey) (*certverify.Credential, error)         = certverify.GenerateSelfSigned
	_ func(string, string) (*certverify.Credential, error)                         = certverify.LoadKeyPair
	_ func(*certverify.Credential) string                                          = (*certverify.Credential).Identity
	_ func(*certverify.Credential, ...certverify.CertHash)                         = (*certverify.Credential).TrustHashes
	_ func(*certverify.Credential, ...ed25519.PublicKey)                           = (*certverify.Credential).TrustPubKeys
	_ func(*certverify.Credential, []byte) error                                   = (*certverify.Credential).VerifyCert
	_ func(*certverify.Credential, certverify.CertHash, []ed25519.PublicKey) error = (*certverify.Credential).VerifyHashAndPubKeys
	_ func(*certverify.Credential) ([]ed25519.PublicKey, error)                    = (*certverify.Credential).MyCertPubKeys
	_ func([]byte) ([]ed25519.PublicKey, error)                                    = certverify.PubKeysFromCert
	_ func(*certverify.Credential, string, []string) *tls.Config                   = (*certverify.Credential).ClientTLSConfig
	_ func(*certverify.Credential, []string) *tls.Config                           = (*certverify.Credential).ServerTLSConfig

	_ func(conntest.Link) (*conntest.PacketConn, *conntest.PacketConn)              = conntest.NewPipe
	_ func(*conntest.PacketConn, conntest.Link)                                     = (*conntest.PacketConn).SetLink
	_ func(*conntest.PacketConn, bool)                                              = (*conntest.PacketConn).Partition
	_ func(*conntest.PacketConn) conntest.LinkStats                                 = (*conntest.PacketConn).Stats
	_ net.PacketConn                                                                = (*conntest.PacketConn)(nil)
	_ func(testing.TB, ...conntest.PairOption) (*conn.Connection, *conn.Connection) = conntest.NewPair
)

// TestAPIShapes names the contract's struct fields and enumerations, and
// checks the ClientAuth names, which configuration files spell out.
func TestAPIShapes(t *testing.T) {
	_ = conn.Settings{IdleTimeout: 0, HandshakeTimeout: 0, KeepAlive: 0, PeerBidiStreamCount: 0, PeerUniStreamCount: 0,
		DatagramReceiveEnabled: false, DatagramQueueLen: 0, StreamReceiveWindow: 0, ConnectionReceiveWindow: 0, MaxMessageSize: 0,
		Allow0RTT: false, DisableResumption: false, SkipHandshakeConfirmation: false}
	_ = qerr.Err0RTTRejected
	_ = qerr.ConnectionError{Reason: qerr.TrustRevoked, Remote: true}
	_ = qerr.CertificateError{Remote: true}
	_ = conn.Stats{}.DatagramsDropped
	_ = &certverify.Credential{Roots: x509.NewCertPool(), ClientAuth: certverify.RequireClientCert,
		AcceptUnpinned: false, InsecureAcceptAnyPeer: false}
	_ = conntest.Link{Loss: 0, Duplicate: 0, Reorder: 0, Delay: 0, Jitter: 0, MTU: 0, Bandwidth: 0, Seed: 0}
	_ = conntest.LinkStats{Sent: 0, Delivered: 0, Dropped: 0, Duplicated: 0, Reordered: 0}
	_ = []stream.Type{stream.Bidirectional, stream.Unidirectional}
	_ = []conn.State{conn.Open, conn.Connecting, conn.Connected, conn.Shutdown, conn.ShutdownComplete}
	for _, tt := range []struct{ got, want string }{
		{certverify.RequireClientCert.String(), "RequireClientCert"},
		{certverify.RequestClientCert.String(), "RequestClientCert"},
		{certverify.NoClientCert.String(), "NoClientCert"},
	} {
		if tt.got != tt.want {
			t.Errorf("String() = %q, want %q", tt.got, tt.want)
		}
	}
}
