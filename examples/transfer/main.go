// Command transfer sends one file over a QUIC stream, checked end to end with
// SHA-256, between two programs that pin each other's certificate.
//
//	transfer -receive DIR -listen ADDR -trust SENDER_HASH
//	transfer -send FILE -connect ADDR -trust RECEIVER_HASH -cert FILE -key FILE
//
// The receiver stores the file in DIR under the name the sender gives, and
// nowhere else: names with path separators, "..", absolute names, empty names
// and control characters are refused. The data goes to a temporary file in
// DIR, which is synced and renamed to its name only once the hash matches,
// and removed on any failure, so a name never holds a partial file.
// See the -help text (usageText) for the whole story.
package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"time"

	"github.com/quicconn/quicconn/conn"
	qerr "github.com/quicconn/quicconn/errors"
	"github.com/quicconn/quicconn/examples/internal/cli"
	"github.com/quicconn/quicconn/stream"
)

const alpn = "quicconn-transfer/1"

const usageText = `Usage:
  transfer -receive DIR -listen ADDR -trust SENDER_HASH
  transfer -send FILE -connect ADDR -trust RECEIVER_HASH -cert FILE -key FILE
  transfer -gen-cert PREFIX

The receiver listens and the sender connects; each pins the other's
certificate by its SHA-256 hash (its "identity"). Make the sender's identity
stable once, then start the receiver, then the sender:

  $ go run ./examples/transfer -gen-cert sender
  identity 9c1b...
  $ go run ./examples/transfer -receive ./inbox -listen 127.0.0.1:4434 -trust 9c1b...
  listening on 127.0.0.1:4434
  receiver identity 5d2c...
  $ go run ./examples/transfer -send report.pdf -connect 127.0.0.1:4434 \
        -trust 5d2c... -cert sender-cert.pem -key sender-key.pem

The receiver takes one file and exits (-keep: until interrupted). It never
overwrites a file and never writes outside DIR. Progress is a bar on a
terminal and a line every -progress interval otherwise.

Exit status: 0 the file is stored and verified, 1 failure, 2 bad usage.

Flags:
`

func main() { os.Exit(run(os.Args[1:], os.Stdout)) }

type config struct {
	send, connect, name string
	receive, listen     string
	keep, verbose       bool
	timeout, interval   time.Duration
	rate                int64
	id                  cli.Identity
	log                 *slog.Logger
}

func run(args []string, out *os.File) int {
	var cfg config
	fs := flag.NewFlagSet("transfer", flag.ContinueOnError)
	fs.StringVar(&cfg.send, "send", "", "send this `FILE` (with -connect)")
	fs.StringVar(&cfg.connect, "connect", "", "sender: the receiver's `ADDR` (host:port)")
	fs.StringVar(&cfg.name, "name", "", "sender: store the file under this `NAME` (default: the file's base name)")
	fs.StringVar(&cfg.receive, "receive", "", "receive into this existing `DIR` (with -listen)")
	fs.StringVar(&cfg.listen, "listen", "", "receiver: listen on `ADDR` (host:port; port 0 picks one)")
	fs.BoolVar(&cfg.keep, "keep", false, "receiver: keep receiving files until interrupted")
	fs.DurationVar(&cfg.timeout, "timeout", 5*time.Second, "give up a handshake after this `duration`")
	fs.DurationVar(&cfg.interval, "progress", time.Second, "without a terminal, print progress every `duration` (0: never)")
	fs.Int64Var(&cfg.rate, "rate", 0, "sender: limit the rate to this many `bytes` per second (0: no limit)")
	fs.BoolVar(&cfg.verbose, "v", false, "log quicconn's connection events (debug) to stderr")
	cfg.id.Register(fs)
	if code, done := cli.ParseFlags(fs, args, usageText); done {
		return code
	}
	cfg.log = cli.Logger(cfg.verbose)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var err error
	switch {
	case cfg.id.GenCert != "":
		var certFile, keyFile, identity string
		certFile, keyFile, identity, err = cli.WriteKeyPair(cfg.id.GenCert, "transfer")
		if err == nil {
			fmt.Fprintf(out, "wrote %s and %s\nidentity %s\n", certFile, keyFile, identity)
		}
	case cfg.id.Check() != nil:
		err = cli.Usage{Msg: cfg.id.Check().Error()}
	case cfg.timeout <= 0 || cfg.interval < 0 || cfg.rate < 0:
		err = cli.Usagef("-timeout must be positive, -progress and -rate not negative")
	case cfg.send != "" && cfg.receive == "":
		if cfg.connect == "" || cfg.listen != "" || cfg.keep {
			err = cli.Usagef("-send goes with -connect ADDR, not -listen or -keep (see -help)")
			break
		}
		err = runSender(ctx, out, &cfg)
	case cfg.receive != "" && cfg.send == "":
		if cfg.listen == "" || cfg.connect != "" || cfg.name != "" || cfg.rate != 0 {
			err = cli.Usagef("-receive goes with -listen ADDR, not -connect, -name or -rate (see -help)")
			break
		}
		err = runReceiver(ctx, out, &cfg)
	default:
		err = cli.Usagef("give either -send FILE -connect ADDR or -receive DIR -listen ADDR (see -help)")
	}
	if err != nil {
		return cli.Fail("transfer", err)
	}
	return cli.ExitOK
}

func (c *config) configuration() *conn.Configuration {
	cfg, err := conn.NewConfiguration([]string{alpn}, conn.Settings{HandshakeTimeout: c.timeout})
	if err != nil {
		panic(err) // the values above are valid
	}
	return cfg
}

// runSender connects, sends the file and checks the receiver's answer.
func runSender(ctx context.Context, out *os.File, cfg *config) error {
	f, err := os.Open(cfg.send)
	if err != nil {
		return cli.Usagef("-send: %v", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return cli.Usagef("-send %s: not a regular file", cfg.send)
	}
	name := cfg.name
	if name == "" {
		name = filepath.Base(cfg.send)
	}
	host, p, err := net.SplitHostPort(cfg.connect)
	port, perr := strconv.ParseUint(p, 10, 16)
	if err != nil || perr != nil || port == 0 {
		return cli.Usagef("-connect %q: want host:port", cfg.connect)
	}
	cred, err := cfg.id.Credential("transfer-sender")
	if err != nil {
		return err
	}
	explain := func(err error) error { return errors.New(cli.Explain(err, cfg.connect, cred.Identity())) }

	reg := conn.NewRegistration("transfer")
	defer reg.Close()
	fmt.Fprintf(out, "sender identity %s\n", cred.Identity())
	c, err := conn.New(reg, cred, conn.WithLogger(cfg.log))
	if err != nil {
		return err
	}
	hctx, cancel := context.WithTimeout(ctx, cfg.timeout+time.Second)
	err = c.Start(hctx, cfg.configuration(), host, uint16(port))
	cancel()
	if err != nil {
		return explain(err)
	}
	s, err := c.OpenOutboundStream(ctx, stream.Bidirectional, false)
	if err != nil {
		return explain(err)
	}

	start := time.Now()
	sum, sendErr := sendFile(ctx, s, f, header{Name: name, Size: st.Size()}, out, cfg)
	if sendErr != nil && ctx.Err() != nil {
		// Interrupted: abort the stream so that the receiver discards what
		// it has, and close the connection with a code that says why.
		s.CancelWrite(codeAborted)
		c.Shutdown(codeAborted)
		return fmt.Errorf("interrupted: %s not sent", name)
	}
	if sendErr != nil {
		// A receiver that refuses the file stops our writes with
		// STOP_SENDING and says why on its side of the stream.
		var se *qerr.StreamError
		if errors.As(sendErr, &se) && se.Kind == qerr.Stopped && se.Remote {
			s.SetReadDeadline(time.Now().Add(5 * time.Second))
			if err := readReply(s, nil); err != nil {
				return err
			}
		}
		s.CancelWrite(codeAborted)
		c.Shutdown(codeAborted)
		return explain(sendErr)
	}
	s.SetReadDeadline(time.Now().Add(30 * time.Second))
	if err := readReply(s, sum); err != nil {
		return explain(err)
	}
	took := time.Since(start)
	if err := c.ShutdownAndWait(ctx, codeOK); err != nil && !closedNormally(err) {
		return explain(err)
	}
	fmt.Fprintf(out, "sent %s (%d bytes) in %v, %s/s; receiver verified sha256 %x\n",
		name, st.Size(), took.Round(time.Millisecond), size(int64(float64(st.Size())/took.Seconds())), sum)
	return nil
}

// sendFile writes the header, the data and the trailer, then FIN.
func sendFile(ctx context.Context, s *stream.Stream, f *os.File, h header, out *os.File, cfg *config) ([]byte, error) {
	if err := writeHeader(s, h); err != nil {
		return nil, err
	}
	hash := sha256.New()
	prog := newProgress(out, "sent", h.Name, h.Size, cfg.interval)
	buf := make([]byte, 64<<10)
	if cfg.rate > 0 && int64(len(buf)) > cfg.rate/10+1 {
		buf = buf[:cfg.rate/10+1] // about ten writes a second
	}
	start := time.Now()
	var sent int64
	for sent < h.Size {
		if err := ctx.Err(); err != nil {
			prog.finish()
			return nil, err
		}
		n, err := f.Read(buf[:min(int64(len(buf)), h.Size-sent)])
		if n > 0 {
			if _, err := s.Write(buf[:n]); err != nil {
				prog.finish()
				return nil, err
			}
			hash.Write(buf[:n])
			prog.Write(buf[:n])
			sent += int64(n)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			prog.finish()
			return nil, err
		}
		if cfg.rate > 0 {
			// Sleep until the rate allows what was sent so far.
			due := start.Add(time.Duration(float64(sent) / float64(cfg.rate) * float64(time.Second)))
			select {
			case <-time.After(time.Until(due)):
			case <-ctx.Done():
			}
		}
	}
	prog.finish()
	if sent != h.Size {
		return nil, fmt.Errorf("%s changed while it was sent: %d bytes instead of %d", h.Name, sent, h.Size)
	}
	sum := hash.Sum(nil)
	if _, err := s.Write(sum); err != nil {
		return nil, err
	}
	return sum, s.Close()
}

// closedNormally reports whether err, a connection's final error, is an
// ordinary end: closed with code 0 by either side.
func closedNormally(err error) bool {
	var ce *qerr.ConnectionError
	return errors.As(err, &ce) && (ce.Reason == qerr.ShutdownByPeer || ce.Reason == qerr.ShutdownByLocal) && ce.Code == codeOK
}
