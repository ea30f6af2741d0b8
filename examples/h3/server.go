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
	"time"

	"github.com/quicconn/quicconn/conn"
	"github.com/quicconn/quicconn/examples/h3/internal/h3wire"
	"github.com/quicconn/quicconn/stream"
)

// AccessEntry describes one served request, for the access log.
type AccessEntry struct {
	Remote   string
	Method   string
	Path     string // the request target (:path), query included
	Proto    string // always "HTTP/3"
	Status   int    // 0 when the stream was aborted before a response
	Bytes    int64  // response content bytes written
	Duration time.Duration
}

func (e AccessEntry) String() string {
	return fmt.Sprintf("%s %q %s %d %dB %s", e.Method, e.Path, e.Proto, e.Status, e.Bytes, e.Duration.Round(time.Microsecond))
}

// Server serves HTTP/3 on quicconn connections with an http.Handler.
type Server struct {
	Handler http.Handler
	// Logger receives connection-level events; nil means slog.Default().
	Logger *slog.Logger
	// AccessLog, when set, is called after each request.
	AccessLog func(AccessEntry)

	mu       sync.Mutex
	closing  bool
	listener *conn.Listener
	conns    map[*serverConn]struct{}
	wg       sync.WaitGroup // Serve's connection goroutines
}

// serverConn is one client connection.
type serverConn struct {
	srv  *Server
	sess *session

	mu        sync.Mutex
	goingAway bool
	nextID    uint64         // lowest client stream ID not yet accepted
	inflight  sync.WaitGroup // requests being handled
}

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

// Serve accepts connections from l until l is closed (by Shutdown) or ctx
// ends, and serves each on its own goroutines.
func (s *Server) Serve(ctx context.Context, l *conn.Listener) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return net.ErrClosed
	}
	s.listener = l
	if s.conns == nil {
		s.conns = make(map[*serverConn]struct{})
	}
	s.mu.Unlock()
	for {
		c, err := l.Accept(ctx)
		if err != nil {
			return err
		}
		s.mu.Lock()
		if s.closing {
			s.mu.Unlock()
			return net.ErrClosed
		}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			s.serveConn(ctx, c)
		}()
	}
}

// Shutdown stops accepting connections, sends GOAWAY on every connection,
// waits for their requests to finish (until ctx ends) and closes them with
// H3_NO_ERROR. It returns when every goroutine of the server has exited.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	if s.listener != nil {
		_ = s.listener.Close()
	}
	conns := make([]*serverConn, 0, len(s.conns))
	for sc := range s.conns {
		conns = append(conns, sc)
	}
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, sc := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sc.shutdown(ctx)
		}()
	}
	wg.Wait()
	s.wg.Wait()
	return ctx.Err()
}

func (s *Server) serveConn(ctx context.Context, c *conn.Connection) {
	log := s.logger()
	if err := c.Accept(ctx); err != nil {
		log.Debug("h3: handshake failed", "err", err)
		return
	}
	if alpn := c.NegotiatedALPN(); alpn != "h3" {
		_ = c.Shutdown(uint64(h3wire.VersionFallback))
		return
	}
	sess, err := newSession(ctx, c, true, log)
	if err != nil {
		log.Debug("h3: session setup failed", "err", err)
		return
	}
	sc := &serverConn{srv: s, sess: sess}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		sess.close(h3wire.NoError)
		return
	}
	s.conns[sc] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, sc)
		s.mu.Unlock()
	}()
	for {
		str, err := c.AcceptInboundStream(sess.ctx)
		if err != nil {
			break
		}
		sc.mu.Lock()
		if sc.goingAway {
			sc.mu.Unlock()
			// Beyond our GOAWAY: the client may retry it elsewhere.
			_ = str.CancelRead(uint64(h3wire.RequestRejected))
			_ = str.CancelWrite(uint64(h3wire.RequestRejected))
			continue
		}
		sc.nextID = uint64(str.ID()) + 4
		sc.inflight.Add(1)
		sc.mu.Unlock()
		go func() {
			defer sc.inflight.Done()
			sc.serveRequest(str)
		}()
	}
	sc.inflight.Wait()
	sess.wait()
}

// drainGrace bounds how long a server that has finished its requests waits
// for the client to close the connection after GOAWAY.
const drainGrace = time.Second

// shutdown is the graceful close of RFC 9114 section 5.2: GOAWAY with the
// first stream ID we will not process; the requests already accepted run to
// completion; then the client, seeing GOAWAY and nothing in flight, closes
// the connection. The server closes it itself (H3_NO_ERROR) when ctx ends,
// or drainGrace after its last response, so that a client that does not
// close cannot hold it; waiting for the client, rather than closing at once,
// keeps CONNECTION_CLOSE from discarding response data not yet delivered.
func (sc *serverConn) shutdown(ctx context.Context) {
	sc.mu.Lock()
	sc.goingAway = true
	id := sc.nextID
	sc.mu.Unlock()
	_ = sc.sess.sendGoAway(id)
	done := make(chan struct{})
	go func() {
		sc.inflight.Wait()
		close(done)
	}()
	select {
	case <-done:
		grace := time.NewTimer(drainGrace)
		select {
		case <-sc.sess.ctx.Done():
		case <-ctx.Done():
		case <-grace.C:
		}
		grace.Stop()
	case <-ctx.Done():
	case <-sc.sess.ctx.Done():
	}
	sc.sess.close(h3wire.NoError)
	<-done
}

// serveRequest handles one request stream.
func (sc *serverConn) serveRequest(str *stream.Stream) {
	start := time.Now()
	sess := sc.sess
	fr := h3wire.NewFrameReader(str)
	entry := AccessEntry{Proto: "HTTP/3"}
	if ra, err := sess.c.RemoteAddr(); err == nil {
		entry.Remote = ra.String()
	}
	defer func() {
		if sc.srv.AccessLog != nil && entry.Method != "" {
			entry.Duration = time.Since(start)
			sc.srv.AccessLog(entry)
		}
	}()

	var fields []qpackField
	for fields == nil {
		ft, n, err := fr.Next()
		if err == io.EOF {
			sess.handleError(str, h3wire.StreamError(h3wire.RequestIncomplete, "request stream ended before HEADERS"))
			return
		}
		if err != nil {
			sess.handleError(str, err)
			return
		}
		switch ft {
		case h3wire.FrameHeaders:
			if fields, err = readHeaderBlock(fr, n); err != nil {
				sess.handleError(str, err)
				return
			}
			if fields == nil {
				fields = []qpackField{}
			}
		case h3wire.FrameData:
			sess.handleError(str, h3wire.ConnError(h3wire.FrameUnexpected, "DATA before HEADERS"))
			return
		default:
			if err := frameOnRequestStream(ft, false); err != nil {
				sess.handleError(str, err)
				return
			}
		}
	}
	req, err := h3wire.RequestFromFields(fields)
	if err != nil {
		sess.handleError(str, err)
		return
	}
	entry.Method, entry.Path = req.Method, req.RequestURI
	if ra, err := sess.c.RemoteAddr(); err == nil {
		req.RemoteAddr = ra.String()
	}
	ctx, cancel := context.WithCancel(sess.ctx)
	defer cancel()
	req = req.WithContext(ctx)
	body := &bodyReader{fr: fr, sess: sess, str: str, contentLength: req.ContentLength}
	req.Body = io.NopCloser(body)

	rw := &responseWriter{str: str, header: make(http.Header), head: req.Method == http.MethodHead}
	if req.Method == http.MethodConnect {
		rw.WriteHeader(http.StatusNotImplemented)
	} else if err := callHandler(sc.srv.Handler, rw, req); err != nil {
		sess.log.Error("h3: handler panicked", "path", req.RequestURI, "panic", err)
		_ = str.CancelWrite(uint64(h3wire.InternalError))
		_ = str.CancelRead(uint64(h3wire.InternalError))
		entry.Status = rw.status
		return
	}
	err = rw.finish()
	entry.Status, entry.Bytes = rw.status, rw.written
	if err != nil {
		entry.Status = 0
		return
	}
	if body.err == nil && !drain(str, body) {
		// The response is complete: the rest of the request is not needed
		// (RFC 9114 section 4.1).
		_ = str.CancelRead(uint64(h3wire.NoError))
	}
}

// drain reads what is left of a request the handler did not read, when it
// is short and already here (typically just the FIN of a GET), and reports
// whether the request ended. Stopping a client that has already sent
// everything would only make it see an error for nothing.
func drain(str *stream.Stream, body *bodyReader) bool {
	_ = str.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	_, err := io.CopyN(io.Discard, body, 64<<10)
	return err == io.EOF
}

// callHandler runs h, turning a panic into an error.
func callHandler(h http.Handler, w http.ResponseWriter, r *http.Request) (err error) {
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				err = errors.New("handler aborted")
				return
			}
			err = fmt.Errorf("%v", p)
		}
	}()
	h.ServeHTTP(w, r)
	return nil
}

// responseWriter sends a response as one HEADERS frame and a DATA frame
// per Write; the HEADERS frame waits for the first Write (or the handler's
// end) so that it shares the stream write with the first content.
type responseWriter struct {
	str     *stream.Stream
	header  http.Header
	head    bool // HEAD: no content
	status  int
	pending []byte // the encoded HEADERS frame, not yet written
	written int64
	err     error
}

func (w *responseWriter) Header() http.Header { return w.header }

func (w *responseWriter) WriteHeader(code int) {
	if w.status != 0 || w.err != nil {
		return
	}
	if code < 100 || code > 999 {
		panic("h3: invalid status code " + strconv.Itoa(code))
	}
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		// Interim responses go out at once, as their own HEADERS frame.
		block := h3wire.EncodeFields(h3wire.ResponseFields(code, w.header))
		_, w.err = w.str.Write(h3wire.AppendFrame(nil, h3wire.FrameHeaders, block))
		return
	}
	w.status = code
	block := h3wire.EncodeFields(h3wire.ResponseFields(code, w.header))
	w.pending = h3wire.AppendFrame(nil, h3wire.FrameHeaders, block)
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		if w.header.Get("Content-Type") == "" && w.header.Get("Content-Encoding") == "" {
			w.header.Set("Content-Type", http.DetectContentType(p))
		}
		w.WriteHeader(http.StatusOK)
	}
	if w.err != nil {
		return 0, w.err
	}
	if w.head || len(p) == 0 {
		return len(p), nil
	}
	chunks := [][]byte{h3wire.AppendFrameHeader(nil, h3wire.FrameData, uint64(len(p))), p}
	if w.pending != nil {
		chunks = append([][]byte{w.pending}, chunks...)
	}
	n, err := w.str.WriteChunks(chunks, false)
	if err != nil {
		w.err = err
		return 0, err
	}
	w.pending = nil
	_ = n
	w.written += int64(len(p))
	return len(p), nil
}

// Flush sends the HEADERS frame if it is still waiting (http.Flusher).
func (w *responseWriter) Flush() {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.pending != nil && w.err == nil {
		_, w.err = w.str.Write(w.pending)
		w.pending = nil
	}
}

// finish completes the response: HEADERS if still pending, then FIN.
func (w *responseWriter) finish() error {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.err != nil {
		return w.err
	}
	var chunks [][]byte
	if w.pending != nil {
		chunks = [][]byte{w.pending}
	}
	_, w.err = w.str.WriteChunks(chunks, true)
	return w.err
}
