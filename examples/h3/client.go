package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"

	"github.com/quicconn/quicconn/certverify"
	"github.com/quicconn/quicconn/conn"
	qerr "github.com/quicconn/quicconn/errors"
	"github.com/quicconn/quicconn/examples/h3/internal/h3wire"
	"github.com/quicconn/quicconn/stream"
)

// Transport is an http.RoundTripper that sends requests over HTTP/3 on
// quicconn connections, one connection per host:port, reused across
// requests until the server sends GOAWAY or the connection ends.
type Transport struct {
	// Credential is the client's trust policy (and, optionally, its own
	// certificate; HTTP/3 servers usually ask for none): pin the server by
	// certificate hash, or by public key with TrustSPKIs (the hash
	// Chromium's --ignore-certificate-errors-spki-list takes), or set Roots.
	// Required.
	Credential *certverify.Credential
	// Settings tunes the QUIC connections; the zero value is the default.
	Settings conn.Settings
	// Logger receives connection-level events; nil means slog.Default().
	Logger *slog.Logger

	mu     sync.Mutex
	reg    *conn.Registration
	closed bool
	conns  map[string]*clientConn // the connection new requests use
	all    []*session             // every connection made, to wait for in Close
}

// clientConn is one connection of a Transport; ready is closed once the
// dial has finished, successfully (sess set) or not (err set).
type clientConn struct {
	ready chan struct{}
	sess  *session
	err   error
}

func (t *Transport) logger() *slog.Logger {
	if t.Logger != nil {
		return t.Logger
	}
	return slog.Default()
}

// Close closes every connection with H3_NO_ERROR and releases their
// goroutines. Requests still running fail.
//
// It sends no GOAWAY first. A client's GOAWAY only limits the server's
// pushes (RFC 9114 section 5.2), and this client allows none; and the
// CONNECTION_CLOSE that follows at once would overtake it, since QUIC drops
// stream data still unsent when a connection closes.
func (t *Transport) Close() error {
	t.mu.Lock()
	t.closed = true
	conns := t.conns
	t.conns = nil
	reg := t.reg
	t.mu.Unlock()
	for _, cc := range conns {
		<-cc.ready
		if cc.sess != nil {
			cc.sess.close(h3wire.NoError)
		}
	}
	var err error
	if reg != nil {
		err = reg.Close()
	}
	t.mu.Lock()
	all := t.all
	t.all = nil
	t.mu.Unlock()
	for _, s := range all {
		s.wait()
	}
	return err
}

// getConn returns a usable connection to authority (host:port), dialing one
// if needed. Concurrent callers share one dial.
func (t *Transport) getConn(ctx context.Context, authority string) (*session, error) {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil, net.ErrClosed
	}
	if t.reg == nil {
		t.reg = conn.NewRegistration("h3-client")
		t.conns = make(map[string]*clientConn)
	}
	cc := t.conns[authority]
	if cc != nil {
		select {
		case <-cc.ready:
			_, goingAway := cc.sess.peerGoAwayOrNil()
			if cc.err != nil || goingAway || cc.sess.ctx.Err() != nil {
				cc = nil // dial a new one
			}
		default:
		}
	}
	if cc == nil {
		cc = &clientConn{ready: make(chan struct{})}
		t.conns[authority] = cc
		reg := t.reg
		t.mu.Unlock()
		cc.sess, cc.err = t.dial(ctx, reg, authority)
		close(cc.ready)
		t.mu.Lock()
		if cc.err != nil && t.conns[authority] == cc {
			delete(t.conns, authority)
		}
		if cc.sess != nil {
			t.all = append(t.all, cc.sess)
		}
		t.mu.Unlock()
		return cc.sess, cc.err
	}
	t.mu.Unlock()
	select {
	case <-cc.ready:
		return cc.sess, cc.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (t *Transport) dial(ctx context.Context, reg *conn.Registration, authority string) (*session, error) {
	if t.Credential == nil {
		return nil, errors.New("no trust policy: Transport.Credential is nil")
	}
	host, portStr, err := net.SplitHostPort(authority)
	if err != nil {
		return nil, err
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("bad port in %q", authority)
	}
	cfg, err := conn.NewConfiguration([]string{"h3"}, t.Settings)
	if err != nil {
		return nil, err
	}
	c, err := conn.New(reg, t.Credential, conn.WithLogger(t.logger()))
	if err != nil {
		return nil, err
	}
	if err := c.Start(ctx, cfg, host, uint16(port)); err != nil {
		return nil, err
	}
	return newSession(ctx, c, false, t.logger())
}

// peerGoAwayOrNil is peerGoAway on a session that may be nil.
func (s *session) peerGoAwayOrNil() (uint64, bool) {
	if s == nil {
		return 0, false
	}
	return s.peerGoAway()
}

// RoundTrip sends req over HTTP/3 and returns the response once its HEADERS
// have arrived; the body streams from the connection. req.URL must be an
// https URL.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "https" {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, fmt.Errorf("unsupported scheme %q", req.URL.Scheme)
	}
	authority := req.URL.Host
	if req.URL.Port() == "" {
		authority = net.JoinHostPort(req.URL.Hostname(), "443")
	}
	ctx := req.Context()
	sess, err := t.getConn(ctx, authority)
	if err != nil {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, err
	}
	return roundTrip(ctx, sess, req)
}

func roundTrip(ctx context.Context, sess *session, req *http.Request) (*http.Response, error) {
	contentLength := req.ContentLength
	if req.Body == nil || req.Body == http.NoBody {
		contentLength = 0
	} else if contentLength == 0 {
		contentLength = -1
	}
	fields, err := h3wire.RequestFields(req, contentLength)
	if err != nil {
		return nil, err
	}
	sess.requestStarted()
	str, err := sess.c.OpenOutboundStream(ctx, stream.Bidirectional, false)
	if err != nil {
		sess.requestDone()
		return nil, err
	}
	// Cancelling the request's context aborts the stream both ways.
	stop := context.AfterFunc(ctx, func() {
		_ = str.CancelWrite(uint64(h3wire.RequestCancelled))
		_ = str.CancelRead(uint64(h3wire.RequestCancelled))
	})
	fail := func(err error) (*http.Response, error) {
		stop()
		sess.requestDone()
		_ = str.CancelWrite(uint64(h3wire.RequestCancelled))
		_ = str.CancelRead(uint64(h3wire.RequestCancelled))
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	headers := h3wire.AppendFrame(nil, h3wire.FrameHeaders, h3wire.EncodeFields(fields))
	if contentLength == 0 {
		_, err = str.WriteChunks([][]byte{headers}, true)
	} else {
		err = writeBody(str, headers, req.Body)
	}
	var se *qerr.StreamError
	if errors.As(err, &se) && se.Kind == qerr.Stopped && se.Remote && se.Code == uint64(h3wire.NoError) {
		// The server has answered without needing the rest of the
		// request (RFC 9114 section 4.1): read the response.
		err = nil
	}
	if err != nil {
		return fail(err)
	}

	fr := h3wire.NewFrameReader(str)
	for {
		ft, n, err := fr.Next()
		if err == io.EOF {
			err = h3wire.StreamError(h3wire.RequestIncomplete, "response stream ended before HEADERS")
		}
		if err != nil {
			sess.handleError(str, err)
			return fail(err)
		}
		switch ft {
		case h3wire.FrameData:
			err := h3wire.ConnError(h3wire.FrameUnexpected, "DATA before HEADERS")
			sess.handleError(str, err)
			return fail(err)
		case h3wire.FrameHeaders:
			fields, err := readHeaderBlock(fr, n)
			if err != nil {
				sess.handleError(str, err)
				return fail(err)
			}
			status, hdr, err := h3wire.ResponseFromFields(fields)
			if err != nil {
				sess.handleError(str, err)
				return fail(err)
			}
			if status < 200 {
				continue // interim response
			}
			resp := &http.Response{
				Status:        strconv.Itoa(status) + " " + http.StatusText(status),
				StatusCode:    status,
				Proto:         "HTTP/3.0",
				ProtoMajor:    3,
				Header:        hdr,
				ContentLength: -1,
				Request:       req,
			}
			if cl := hdr.Get("Content-Length"); cl != "" {
				if v, err := strconv.ParseInt(cl, 10, 64); err == nil && v >= 0 {
					resp.ContentLength = v
				}
			}
			bodyLen := resp.ContentLength
			if req.Method == http.MethodHead || status == http.StatusNoContent || status == http.StatusNotModified {
				bodyLen = -1 // content-length describes a body that is not sent
			}
			resp.Body = &responseBody{
				r:    &bodyReader{fr: fr, sess: sess, str: str, fromServer: true, contentLength: bodyLen},
				str:  str,
				stop: stop,
				done: sess.requestDone,
			}
			return resp, nil
		default:
			if err := frameOnRequestStream(ft, true); err != nil {
				sess.handleError(str, err)
				return fail(err)
			}
		}
	}
}

// writeBody sends the HEADERS frame, then body as DATA frames, then FIN.
func writeBody(str *stream.Stream, headers []byte, body io.ReadCloser) error {
	defer body.Close()
	buf := make([]byte, 32<<10)
	pending := headers
	for {
		n, err := body.Read(buf)
		if n > 0 {
			chunks := [][]byte{h3wire.AppendFrameHeader(nil, h3wire.FrameData, uint64(n)), buf[:n]}
			if pending != nil {
				chunks = append([][]byte{pending}, chunks...)
				pending = nil
			}
			if _, werr := str.WriteChunks(chunks, false); werr != nil {
				return werr
			}
		}
		if err == io.EOF {
			var chunks [][]byte
			if pending != nil {
				chunks = [][]byte{pending}
			}
			_, err = str.WriteChunks(chunks, true)
			return err
		}
		if err != nil {
			return err
		}
	}
}

// responseBody is a response's Body: reading it to io.EOF completes the
// exchange; closing it early stops the server with H3_REQUEST_CANCELLED.
type responseBody struct {
	r    *bodyReader
	str  *stream.Stream
	stop func() bool
	done func() // the session's requestDone
	once sync.Once
}

func (b *responseBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil {
		b.finish()
	}
	return n, err
}

func (b *responseBody) Close() error {
	b.finish()
	return nil
}

// finish ends the exchange once: at the end of the body, at an error or at
// Close, which stops the server if the body was not read to its end.
func (b *responseBody) finish() {
	b.once.Do(func() {
		b.stop()
		if b.r.err != io.EOF {
			_ = b.str.CancelRead(uint64(h3wire.RequestCancelled))
			_ = b.str.CancelWrite(uint64(h3wire.RequestCancelled))
		}
		b.done()
	})
}
