// Command echo shows quicconn end to end: a listener and a client, pinned to
// each other by certificate hash, that echo a bidirectional stream, exchange
// messages on message streams and bounce datagrams, printing each step with
// its timing, the negotiated ALPN, both identities and the final statistics.
//
// With no flags it runs both halves in one process:
//
//	go run ./examples/echo
//
// Two processes (two terminals) need each side to trust the other's
// certificate hash; see the -help text, printed by usage below.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"time"

	"github.com/quicconn/quicconn/conn"
	"github.com/quicconn/quicconn/examples/internal/cli"
)

// alpn is the application protocol both halves offer.
const alpn = "quicconn-echo/1"

const usageText = `Usage:
  echo                                   listener and client in one process
  echo -listen ADDR -trust CLIENT_HASH   the listener half
  echo -connect ADDR -trust SERVER_HASH -cert FILE -key FILE
                                         the client half
  echo -gen-cert PREFIX                  write a key pair, print its hash

Both halves verify each other: each is started with -trust and the SHA-256
hash (the "identity") of the other's certificate. There is no way to trust
any peer. The listener's identity is printed when it starts; a client must
know its own identity before the listener starts, so give it a stable
certificate made once with -gen-cert. Two terminals:

  $ go run ./examples/echo -gen-cert client
  identity 9c1b...                (client-cert.pem, client-key.pem)
  $ go run ./examples/echo -listen 127.0.0.1:4433 -trust 9c1b...
  listening on 127.0.0.1:4433
  server identity 5d2c...
  $ go run ./examples/echo -connect 127.0.0.1:4433 -trust 5d2c... \
        -cert client-cert.pem -key client-key.pem

The listener serves one client and exits (-keep serves until interrupted).
A client that uses a fresh certificate (no -cert) prints its identity and is
rejected; a listener logs the identity of every client it rejects.

Exit status: 0 success, 1 failure (network, certificate), 2 bad usage.

Flags:
`

func main() { os.Exit(run(os.Args[1:], os.Stdout)) }

// config holds the parsed flags.
type config struct {
	listen, connect string
	timeout         time.Duration
	keep, verbose   bool
	id              cli.Identity
	log             *slog.Logger
}

func run(args []string, out io.Writer) int {
	var cfg config
	fs := flag.NewFlagSet("echo", flag.ContinueOnError)
	fs.StringVar(&cfg.listen, "listen", "", "run the listener half on `ADDR` (host:port; port 0 picks one)")
	fs.StringVar(&cfg.connect, "connect", "", "run the client half against the listener at `ADDR` (host:port)")
	fs.DurationVar(&cfg.timeout, "timeout", 5*time.Second, "give up a handshake after this `duration`")
	fs.BoolVar(&cfg.keep, "keep", false, "listener: keep serving clients until interrupted")
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
		err = genCert(out, cfg.id.GenCert)
	case cfg.listen != "" && cfg.connect != "":
		err = cli.Usagef("-listen and -connect are the two halves: run them as two processes (see -help)")
	case cfg.timeout <= 0:
		err = cli.Usagef("-timeout must be positive")
	case cfg.id.Check() != nil:
		err = cli.Usage{Msg: cfg.id.Check().Error()}
	case cfg.listen != "":
		err = runListener(ctx, out, &cfg)
	case cfg.connect != "":
		err = runClient(ctx, out, &cfg)
	case len(cfg.id.Trust) > 0 || cfg.id.Cert != "" || cfg.keep:
		err = cli.Usagef("-trust, -cert, -key and -keep need -listen or -connect (see -help)")
	default:
		err = runDemo(ctx, out, &cfg)
	}
	if err != nil {
		return cli.Fail("echo", err)
	}
	return cli.ExitOK
}

func genCert(out io.Writer, prefix string) error {
	certFile, keyFile, identity, err := cli.WriteKeyPair(prefix, "echo")
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "wrote %s and %s\n", certFile, keyFile)
	fmt.Fprintf(out, "identity %s\n", identity)
	return nil
}

// settings are those of both halves: datagrams on, the handshake bounded by
// -timeout.
func (c *config) configuration() *conn.Configuration {
	cfg, err := conn.NewConfiguration([]string{alpn}, conn.Settings{
		HandshakeTimeout:       c.timeout,
		DatagramReceiveEnabled: true,
	})
	if err != nil {
		panic(err) // the values above are valid
	}
	return cfg
}

// splitAddr splits host:port for Connection.Start.
func splitAddr(addr string) (string, uint16, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, cli.Usagef("-connect %q: %v", addr, err)
	}
	port, err := strconv.ParseUint(p, 10, 16)
	if err != nil || port == 0 {
		return "", 0, cli.Usagef("-connect %q: bad port %q", addr, p)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	return host, uint16(port), nil
}
