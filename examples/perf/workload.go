package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Each workload measures one backend once and returns its figures by
// metric name. The client code is the same for every backend.

type figures map[string]float64

// opsKey is the figure that counts a workload's operations (MiB sent,
// requests, datagrams sent, handshakes); the runner divides the process's
// CPU time by it into cpuKey. CPU time per operation counts both sides, and
// is steadier than rates on a loaded machine.
const (
	opsKey = "ops"
	cpuKey = "CPU µs/op"
)

// bulk sends size bytes (or, with dur > 0, as much as it can for dur) on one
// stream in chunkSize writes and counts until the server has acknowledged
// receiving all of them.
func bulk(ctx context.Context, b backend, size int64, dur time.Duration) (figures, error) {
	s, err := b.Dial(ctx)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	st, err := s.OpenStream(ctx)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, chunkSize)
	buf[0] = opBulk
	start := time.Now()
	if _, err := st.Write(buf[:1]); err != nil {
		return nil, err
	}
	var sent int64
	for {
		if dur > 0 {
			if time.Since(start) >= dur {
				break
			}
		} else if sent >= size {
			break
		}
		n, err := st.Write(buf)
		sent += int64(n)
		if err != nil {
			return nil, err
		}
	}
	if err := st.CloseWrite(); err != nil {
		return nil, err
	}
	var ack [8]byte
	if _, err := io.ReadFull(st, ack[:]); err != nil {
		return nil, fmt.Errorf("bulk ack: %w", err)
	}
	elapsed := time.Since(start)
	if got := int64(binary.BigEndian.Uint64(ack[:])); got != sent {
		return nil, fmt.Errorf("bulk: server received %d of %d bytes", got, sent)
	}
	return figures{"MB/s": float64(sent) / elapsed.Seconds() / 1e6, opsKey: float64(sent) / (1 << 20)}, nil
}

// warmup is the number of untimed requests each requester makes first.
const warmup = 20

// requests runs conc requesters for dur. Over QUIC all share one connection
// and each request is a new stream; over TCP each requester has its own
// connection and sends its requests on it one after another.
func requests(ctx context.Context, b backend, conc int, dur time.Duration) (figures, error) {
	var shared session
	if b.Multiplexed() {
		s, err := b.Dial(ctx)
		if err != nil {
			return nil, err
		}
		defer s.Close()
		shared = s
	}
	type result struct {
		lat []time.Duration
		err error
	}
	results := make([]result, conc)
	var (
		wg    sync.WaitGroup
		ready sync.WaitGroup
		start = make(chan struct{})
	)
	ready.Add(conc)
	var deadline atomic.Int64
	for i := range conc {
		wg.Go(func() {
			r := &results[i]
			req := make([]byte, 1+reqSize)
			req[0] = opRequest
			resp := make([]byte, respSize+1)
			var one func() error
			if shared != nil {
				one = func() error {
					st, err := shared.OpenStream(ctx)
					if err != nil {
						return err
					}
					if _, err := st.Write(req); err != nil {
						return err
					}
					if err := st.CloseWrite(); err != nil {
						return err
					}
					if _, err := io.ReadFull(st, resp[:respSize]); err != nil {
						return err
					}
					if n, err := st.Read(resp[respSize:]); n != 0 || !errors.Is(err, io.EOF) {
						return fmt.Errorf("response not followed by FIN: %d, %v", n, err)
					}
					return nil
				}
			} else {
				s, err := b.Dial(ctx)
				if err != nil {
					r.err = err
					ready.Done()
					return
				}
				defer s.Close()
				st, err := s.OpenStream(ctx)
				if err != nil {
					r.err = err
					ready.Done()
					return
				}
				one = func() error {
					if _, err := st.Write(req); err != nil {
						return err
					}
					_, err := io.ReadFull(st, resp[:respSize])
					return err
				}
			}
			// A few untimed requests warm up windows and pools.
			for range warmup {
				if err := one(); err != nil {
					r.err = err
					ready.Done()
					return
				}
			}
			ready.Done()
			<-start
			r.lat = make([]time.Duration, 0, 1<<14)
			end := deadline.Load()
			for time.Now().UnixNano() < end {
				t0 := time.Now()
				if err := one(); err != nil {
					r.err = err
					return
				}
				r.lat = append(r.lat, time.Since(t0))
			}
		})
	}
	ready.Wait()
	t0 := time.Now()
	deadline.Store(t0.Add(dur).UnixNano())
	close(start)
	wg.Wait()
	elapsed := time.Since(t0)
	var all []time.Duration
	for _, r := range results {
		if r.err != nil {
			return nil, r.err
		}
		all = append(all, r.lat...)
	}
	if len(all) == 0 {
		return nil, errors.New("no request completed")
	}
	slices.Sort(all)
	return figures{
		"req/s":  float64(len(all)) / elapsed.Seconds(),
		"p50 µs": float64(all[len(all)/2].Microseconds()),
		"p99 µs": float64(all[len(all)*99/100].Microseconds()),
		opsKey:   float64(len(all) + warmup*conc), // the CPU time includes the warm-up
	}, nil
}

// datagrams sends dgramSize-byte datagrams as fast as SendDatagram takes
// them for dur, then asks the server how many arrived.
func datagrams(ctx context.Context, b backend, dur time.Duration) (figures, error) {
	s, err := b.Dial(ctx)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	if _, err := counter(ctx, s); err != nil { // resets the server's count
		return nil, err
	}
	payload := make([]byte, dgramSize)
	var sent int
	start := time.Now()
	for time.Since(start) < dur {
		if err := s.SendDatagram(payload); err != nil {
			return nil, fmt.Errorf("send datagram: %w", err)
		}
		sent++
	}
	elapsed := time.Since(start)
	time.Sleep(100 * time.Millisecond) // let the last ones arrive
	rcvd, err := counter(ctx, s)
	if err != nil {
		return nil, err
	}
	return figures{
		"sent/s":     float64(sent) / elapsed.Seconds(),
		opsKey:       float64(sent),
		"received/s": float64(rcvd) / elapsed.Seconds(),
		"loss %":     100 * (1 - float64(rcvd)/float64(max(sent, 1))),
	}, nil
}

func counter(ctx context.Context, s session) (uint64, error) {
	st, err := s.OpenStream(ctx)
	if err != nil {
		return 0, err
	}
	if _, err := st.Write([]byte{opCounter}); err != nil {
		return 0, err
	}
	if err := st.CloseWrite(); err != nil {
		return 0, err
	}
	var out [8]byte
	if _, err := io.ReadFull(st, out[:]); err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint64(out[:]), nil
}

// handshakes runs conc loops of full handshakes (new socket, mutual
// authentication, close) for dur.
func handshakes(ctx context.Context, b backend, conc int, dur time.Duration) (figures, error) {
	var (
		wg    sync.WaitGroup
		count atomic.Int64
		errs  = make([]error, conc)
	)
	start := time.Now()
	for i := range conc {
		wg.Go(func() {
			for time.Since(start) < dur {
				s, err := b.Dial(ctx)
				if err != nil {
					errs[i] = err
					return
				}
				s.Close()
				count.Add(1)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return figures{"/s": float64(count.Load()) / elapsed.Seconds(), opsKey: float64(count.Load())}, nil
}

// resumer dials with the session tickets of its earlier dials.
type resumer interface {
	DialResumed(ctx context.Context) (session, error)
}

// handshakesResumed runs a loop of handshakes (new socket, one request,
// close) that resume the TLS session of an earlier one, for dur, and
// reports which share did resume. The request's round trip lets the
// server's session ticket, which follows the handshake, arrive before the
// close, on both stacks alike.
func handshakesResumed(ctx context.Context, b backend, dur time.Duration) (figures, error) {
	r, ok := b.(resumer)
	if !ok {
		return nil, fmt.Errorf("%s cannot resume sessions", b.Name())
	}
	var count, resumed int
	start := time.Now()
	for time.Since(start) < dur {
		s, err := r.DialResumed(ctx)
		if err != nil {
			return nil, err
		}
		if _, err := counter(ctx, s); err != nil {
			s.Close()
			return nil, err
		}
		if rs, ok := s.(interface{ Resumed() bool }); ok && rs.Resumed() {
			resumed++
		}
		s.Close()
		count++
	}
	elapsed := time.Since(start)
	return figures{"/s": float64(count) / elapsed.Seconds(), "resumed %": 100 * float64(resumed) / float64(count), opsKey: float64(count)}, nil
}

// idle opens n connections and leaves them idle; the heap and goroutines
// they add to the process, which holds both sides, are divided by 2n.
func idle(ctx context.Context, name string, h idleHolder, n int) (figures, error) {
	// Each connection has a socket of its own on the client side, and over
	// TCP one on the server side too.
	if err := ensureFiles(2*n + 64); err != nil {
		return nil, err
	}
	heap0, stack0, g0 := heapAndGoroutines()
	closeAll, err := h.DialIdle(ctx, n)
	if err != nil {
		return nil, err
	}
	time.Sleep(100 * time.Millisecond) // handshake leftovers settle
	heap1, stack1, g1 := heapAndGoroutines()
	if heapProfile != nil {
		if err := heapProfile("idle", name); err != nil {
			closeAll()
			return nil, err
		}
	}
	closeAll()
	sides := float64(2 * n)
	return figures{
		"heap B/conn/side":     float64(int64(heap1)-int64(heap0)) / sides,
		"stack B/conn/side":    float64(int64(stack1)-int64(stack0)) / sides,
		"goroutines/conn/side": float64(g1-g0) / sides,
	}, nil
}

// heapProfile, when set (-memprofile), writes a heap profile while the idle
// connections of a workload over the named backend are held.
var heapProfile func(workload, backend string) error

// heapAndGoroutines collects garbage and returns the live heap, the stack
// in use and the goroutine count once that count has been still for a
// moment: the finalizers that a collection queues run on a goroutine that
// counts while it runs them.
func heapAndGoroutines() (heap, stack uint64, goroutines int) {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	waitQuiet()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc, ms.StackInuse, runtime.NumGoroutine()
}
