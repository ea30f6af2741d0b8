package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/quicconn/quicconn/certverify"
	"github.com/quicconn/quicconn/conn"
	"github.com/quicconn/quicconn/examples/internal/cli"
	"github.com/quicconn/quicconn/stream"
)

// runReceiver listens and stores the files trusted senders send.
func runReceiver(ctx context.Context, out *os.File, cfg *config) error {
	if st, err := os.Stat(cfg.receive); err != nil || !st.IsDir() {
		return cli.Usagef("-receive %s: not an existing directory", cfg.receive)
	}
	cred, err := cfg.id.Credential("transfer-receiver")
	if err != nil {
		return err
	}
	reg := conn.NewRegistration("transfer")
	defer reg.Close()
	ln, err := conn.Listen(reg, cfg.listen, cfg.configuration(), cred, conn.WithLogger(cfg.log))
	if err != nil {
		return fmt.Errorf("listen on %s: %s", cfg.listen, cli.Explain(err, cfg.listen, cred.Identity()))
	}
	defer ln.Close()
	fmt.Fprintf(out, "listening on %s\n", ln.Addr())
	fmt.Fprintf(out, "receiver identity %s\n", cred.Identity())
	for {
		c, err := ln.Accept(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil // interrupted
			}
			return err
		}
		remote, _ := c.RemoteAddr()
		explain := func(err error) error { return errors.New(cli.Explain(err, remote.String(), cred.Identity())) }
		if err := c.Accept(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			// An untrusted sender is not a failed transfer: keep waiting.
			fmt.Fprintf(out, "sender %v: handshake failed: %v\n", remote, explain(err))
			continue
		}
		fmt.Fprintf(out, "sender %v, identity %s\n", remote, certverify.HashOf(c.RemoteCertificate().Raw))
		err = receiveOne(ctx, c, out, cfg, explain)
		// The sender closes the connection once it has read the answer;
		// close it here only if it does not.
		select {
		case <-c.WatchShutdown():
		case <-time.After(5 * time.Second):
		case <-ctx.Done():
		}
		c.Shutdown(codeOK)
		<-c.WatchShutdown()
		switch {
		case err != nil && cfg.keep:
			fmt.Fprintf(out, "sender %v: %v\n", remote, err)
		case err != nil:
			return err
		case !cfg.keep:
			return nil
		}
	}
}

// receiveOne receives one file on the connection's first stream and answers
// the sender.
func receiveOne(ctx context.Context, c *conn.Connection, out *os.File, cfg *config, explain func(error) error) error {
	s, err := c.AcceptInboundStream(ctx)
	if err != nil {
		return explain(err)
	}
	h, err := readHeader(s)
	if err == nil {
		err = checkName(h.Name)
	}
	if err == nil {
		if _, serr := os.Lstat(filepath.Join(cfg.receive, h.Name)); serr == nil {
			err = fmt.Errorf("%s already exists in the receiving directory", h.Name)
		}
	}
	if err != nil {
		refuse(s, err)
		return fmt.Errorf("refused a file: %w", err)
	}
	sum, err := store(s, cfg.receive, h, out, cfg)
	if err != nil {
		refuse(s, err)
		return fmt.Errorf("receiving %s: %w", h.Name, explain(err))
	}
	writeReply(s, sum, nil)
	s.Close()
	fmt.Fprintf(out, "received %s (%d bytes) sha256 %x\n", h.Name, h.Size, sum)
	return nil
}

// refuse answers ERR and stops the sender's writes.
func refuse(s *stream.Stream, err error) {
	writeReply(s, nil, err)
	s.Close()
	s.CancelRead(codeRejected)
}

// store writes the data to a temporary file in dir and, once the trailer's
// hash matches and the data is synced, renames it to its name. On failure it
// removes the temporary file: the name never holds a partial file.
func store(s *stream.Stream, dir string, h header, out *os.File, cfg *config) (sum []byte, err error) {
	tmp, err := os.CreateTemp(dir, ".transfer-*.part")
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	hash := sha256.New()
	prog := newProgress(out, "received", h.Name, h.Size, cfg.interval)
	n, err := io.CopyN(io.MultiWriter(tmp, hash, prog), s, h.Size)
	prog.finish()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("the sender stopped after %d of %d bytes", n, h.Size)
		}
		return nil, err
	}
	var trailer [sha256.Size]byte
	if _, err := io.ReadFull(s, trailer[:]); err != nil {
		return nil, fmt.Errorf("reading the checksum: %w", err)
	}
	if extra, err := s.Read(make([]byte, 1)); extra > 0 || err != io.EOF {
		if err == nil || err == io.EOF {
			err = errors.New("data after the checksum")
		}
		return nil, err
	}
	sum = hash.Sum(nil)
	if !bytes.Equal(sum, trailer[:]) {
		return nil, fmt.Errorf("sha256 mismatch: sender says %x, received data hashes to %x", trailer, sum)
	}
	if err := tmp.Sync(); err != nil {
		return nil, err
	}
	if err := tmp.Close(); err != nil {
		return nil, err
	}
	final := filepath.Join(dir, h.Name)
	if _, err := os.Lstat(final); err == nil {
		return nil, fmt.Errorf("%s appeared in the receiving directory meanwhile", h.Name)
	}
	if err := os.Rename(tmp.Name(), final); err != nil {
		return nil, err
	}
	syncDir(dir)
	return sum, nil
}

// syncDir makes the rename durable where the platform allows it.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
