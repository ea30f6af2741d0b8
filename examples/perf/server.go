package main

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"sync"
	"sync/atomic"
)

// The wire protocol of the perf server. Every stream starts with one byte
// that names its workload:
//
//	'B' bulk:     the client sends bytes until FIN; the server answers with
//	              the 8-byte big-endian count it received, then FIN.
//	'R' request:  the client sends reqSize bytes and FIN; the server answers
//	              with respSize bytes and FIN. On TCP, where the connection is
//	              the stream, requests follow each other without FIN.
//	'C' counter:  the server answers with the 8-byte count of datagrams it
//	              received on this connection since the last 'C', then FIN.
//
// Datagrams are counted and dropped.
const (
	opBulk    = 'B'
	opRequest = 'R'
	opCounter = 'C'

	reqSize   = 1 << 10
	respSize  = 1 << 10
	chunkSize = 64 << 10
	dgramSize = 1100
)

var (
	bufPool  = sync.Pool{New: func() any { b := make([]byte, chunkSize); return &b }}
	response = make([]byte, respSize)
)

// serverConn is what the server needs of a QUIC connection, raw or quicconn.
type serverConn interface {
	AcceptStream(ctx context.Context) (io.ReadWriteCloser, error)
	ReceiveDatagram(ctx context.Context) ([]byte, error)
}

type server struct{}

func newServer() *server { return &server{} }

// serveQUIC serves one connection until it is closed: one goroutine counts
// datagrams, one accepts streams, and each stream gets its own.
func (s *server) serveQUIC(c serverConn) {
	var dgrams atomic.Uint64
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			if _, err := c.ReceiveDatagram(context.Background()); err != nil {
				return
			}
			dgrams.Add(1)
		}
	})
	for {
		st, err := c.AcceptStream(context.Background())
		if err != nil {
			break
		}
		wg.Go(func() { handleStream(st, &dgrams) })
	}
	wg.Wait()
}

func handleStream(st io.ReadWriteCloser, dgrams *atomic.Uint64) {
	defer st.Close()
	var op [1]byte
	if _, err := io.ReadFull(st, op[:]); err != nil {
		return
	}
	var out [8]byte
	switch op[0] {
	case opBulk:
		n, err := drain(st)
		if err != nil {
			return
		}
		binary.BigEndian.PutUint64(out[:], uint64(n))
		st.Write(out[:])
	case opRequest:
		n, err := drain(st)
		if err != nil || n != reqSize {
			return
		}
		st.Write(response)
	case opCounter:
		if _, err := drain(st); err != nil {
			return
		}
		binary.BigEndian.PutUint64(out[:], dgrams.Swap(0))
		st.Write(out[:])
	}
}

// drain reads r to EOF and returns how many bytes it read.
func drain(r io.Reader) (int64, error) {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	var total int64
	for {
		n, err := r.Read(*bp)
		total += int64(n)
		if errors.Is(err, io.EOF) {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// serveTCP serves one TLS connection: requests one after another, or one
// bulk transfer that ends the connection.
func (s *server) serveTCP(c interface {
	io.ReadWriter
	CloseWrite() error
}) {
	var op [1]byte
	req := make([]byte, reqSize)
	for {
		if _, err := io.ReadFull(c, op[:]); err != nil {
			return
		}
		switch op[0] {
		case opRequest:
			if _, err := io.ReadFull(c, req); err != nil {
				return
			}
			if _, err := c.Write(response); err != nil {
				return
			}
		case opBulk:
			n, err := drain(c)
			if err != nil {
				return
			}
			var out [8]byte
			binary.BigEndian.PutUint64(out[:], uint64(n))
			c.Write(out[:])
			c.CloseWrite()
			return
		default:
			return
		}
	}
}
