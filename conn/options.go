package conn

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/qlogwriter"
)

// An Option changes how New or Listen sets up a connection or listener.
type Option func(*options)

type options struct {
	pc        net.PacketConn
	localAddr string
	logger    *slog.Logger
	keyLog    io.Writer
	qlogDir   string
}

func newOptions(opts []Option) options {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if o.logger == nil {
		o.logger = slog.Default()
	}
	return o
}

// WithPacketConn runs the connection or listener on pc instead of a UDP
// socket of its own; conntest's in-memory pipes are used this way.
// Connections and listeners of one Registration given the same pc share it.
// The caller keeps ownership of pc: it is not closed by quicconn, and must
// stay open until every connection and listener using it has shut down.
func WithPacketConn(pc net.PacketConn) Option { return func(o *options) { o.pc = pc } }

// WithLocalAddr binds a connection's UDP socket to addr ("host:port").
// Connections and listeners of one Registration that bind the same address
// with a non-zero port share one socket, as a QUIC server's clients
// multiplexed on its listening port do.
func WithLocalAddr(addr string) Option { return func(o *options) { o.localAddr = addr } }

// WithLogger sends the connection's lifecycle events to l, at Debug level
// for ordinary events and Warn for suspicious ones. The default is
// slog.Default(). Key material is never logged.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithKeyLog writes the TLS secrets of every handshake to w in the NSS key
// log format, so that Wireshark can decrypt captured traffic. It weakens the
// security of the connections: use it only to debug. Without this option no
// secret is written anywhere.
func WithKeyLog(w io.Writer) Option { return func(o *options) { o.keyLog = w } }

// WithQlogDir writes a qlog trace (quic-go's qlog, the JSON-SEQ format that
// qvis reads) of every connection to a file in dir, named
// <original destination connection ID>_<client|server>.sqlog. The directory
// is created if it does not exist.
func WithQlogDir(dir string) Option { return func(o *options) { o.qlogDir = dir } }

// qlogTracer is quic-go's qlog.DefaultConnectionTracer with the directory as
// a parameter instead of the QLOGDIR environment variable, and with failures
// ignored rather than fatal: a trace is a debugging aid, never a reason to
// fail a connection.
func qlogTracer(dir string) func(context.Context, bool, quic.ConnectionID) qlogwriter.Trace {
	return func(_ context.Context, isClient bool, connID quic.ConnectionID) qlogwriter.Trace {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil
		}
		label := "server"
		if isClient {
			label = "client"
		}
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("%s_%s.sqlog", connID, label)))
		if err != nil {
			return nil
		}
		seq := qlogwriter.NewConnectionFileSeq(bufferedFile{bufio.NewWriter(f), f}, isClient, connID)
		go seq.Run()
		return seq
	}
}

type bufferedFile struct {
	*bufio.Writer
	f *os.File
}

func (b bufferedFile) Close() error {
	if err := b.Flush(); err != nil {
		b.f.Close()
		return err
	}
	return b.f.Close()
}
