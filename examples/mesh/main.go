// Command mesh shows quicconn's live identity in a small mesh: nodes that
// pin each other by certificate hash, gossip over message streams, answer
// requests on bidirectional streams and send datagrams, while the
// membership changes under them. A node is admitted live (every running
// node trusts it, on its running listener, and it connects to all) and one
// is revoked live (every other node stops trusting it, and quicconn closes
// its connections by itself). Each step prints what the nodes saw, with
// its timing.
//
// All the nodes run in one process, each with its own Registration,
// identity and listener on 127.0.0.1:
//
//	go run ./examples/mesh
//	go run ./examples/mesh -nodes 8 -v
//
// It exits by itself within a few seconds: 0 when every expectation held,
// 1 with a line that says which did not.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"

	"github.com/quicconn/quicconn/examples/internal/cli"
)

// The bounds of -nodes: a mesh needs a node to revoke and one to keep, and
// a full mesh grows as the square of its size.
const (
	minNodes = 2
	maxNodes = 32
)

const usageText = `Usage:
  mesh [-nodes N] [-v]

Starts N nodes in this process, each with its own QUIC listener on
127.0.0.1 and a fresh self-signed certificate, every node trusting the
others by pinning the SHA-256 hash of their certificates (the "identity",
shown as its first 8 hex digits). Then, printing each step with its time:

  connect    every node connects to every other (a full mesh)
  gossip     each node starts a rumor; nodes forward what is new to them
             on message streams, until every node knows every rumor
  request    each node asks each peer, on a bidirectional stream, how many
             rumors it knows
  datagrams  each node sends datagrams to each peer (unreliable)
  admit      a new node joins: every running node trusts its hash while its
             listener runs, and the new node connects to all of them
  revoke     every node stops trusting one node: quicconn closes the
             connections to it by itself, on both sides
  refused    the revoked node tries to connect again and is refused
  after      a last rumor reaches every node still trusted
  streams    every message stream is closed; each must have delivered
             every message sent on it
  shutdown   the connections close with code 0

Exit status: 0 success, 1 an expectation failed (the line says which),
2 bad usage.

Flags:
`

func main() { os.Exit(run(os.Args[1:], os.Stdout)) }

// config holds the parsed flags.
type config struct {
	nodes   int
	verbose bool
	log     *slog.Logger
}

func run(args []string, out io.Writer) int {
	var cfg config
	fs := flag.NewFlagSet("mesh", flag.ContinueOnError)
	fs.IntVar(&cfg.nodes, "nodes", 5, fmt.Sprintf("start `N` nodes (%d to %d), before one more is admitted and one revoked", minNodes, maxNodes))
	fs.BoolVar(&cfg.verbose, "v", false, "print what every node sees at every step, and log quicconn's connection events (debug) to stderr")
	if code, done := cli.ParseFlags(fs, args, usageText); done {
		return code
	}
	if cfg.nodes < minNodes || cfg.nodes > maxNodes {
		return cli.Fail("mesh", cli.Usagef("-nodes %d: want %d to %d (see -help)", cfg.nodes, minNodes, maxNodes))
	}
	cfg.log = cli.Logger(cfg.verbose)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := runMesh(ctx, out, &cfg); err != nil {
		return cli.Fail("mesh", err)
	}
	return cli.ExitOK
}
