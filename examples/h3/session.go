package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"

	"github.com/quicconn/quicconn/conn"
	qerr "github.com/quicconn/quicconn/errors"
	"github.com/quicconn/quicconn/examples/h3/internal/h3wire"
	"github.com/quicconn/quicconn/stream"
)

// ourSettings is what both sides send: no dynamic QPACK table, so the peer's
// header blocks only use the static table and literals and its QPACK encoder
// stream has nothing to say, and a bound on header blocks.
var ourSettings = []h3wire.Setting{
	{ID: h3wire.SettingQPACKMaxTableCapacity, Value: 0},
	{ID: h3wire.SettingQPACKBlockedStreams, Value: 0},
	{ID: h3wire.SettingMaxFieldSectionSize, Value: h3wire.MaxFieldSectionSize},
}

// session is the connection-level half of HTTP/3, shared by client and
// server: our control stream and QPACK streams, and the peer's unidirectional
// streams. Request streams are the client's and server's business.
type session struct {
	c        *conn.Connection
	isServer bool
	log      *slog.Logger

	// ctx ends when the connection reaches ShutdownComplete; request
	// contexts derive from it.
	ctx    context.Context
	cancel context.CancelFunc

	ctlMu sync.Mutex // serialises writes to ctl
	ctl   *stream.Stream
	// The QPACK streams are opened as RFC 9204 requires and stay empty.
	qpackEnc, qpackDec *stream.Stream

	mu            sync.Mutex
	peerStreams   map[h3wire.StreamType]bool // critical streams the peer opened
	settings      map[uint64]uint64          // the peer's, once received
	settingsReady chan struct{}              // closed when settings is set
	goAwayID      uint64                     // the peer's last GOAWAY ID
	goAway        chan struct{}              // closed at the peer's first GOAWAY
	failed        *h3wire.Error              // the connection error we closed with
	active        int                        // client: requests in progress

	wg sync.WaitGroup // the session's goroutines
}

// newSession opens our control and QPACK streams on a Connected connection,
// sends SETTINGS, and starts reading the peer's unidirectional streams.
func newSession(ctx context.Context, c *conn.Connection, isServer bool, log *slog.Logger) (*session, error) {
	s := &session{
		c:             c,
		isServer:      isServer,
		log:           log,
		peerStreams:   make(map[h3wire.StreamType]bool),
		settingsReady: make(chan struct{}),
		goAway:        make(chan struct{}),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		<-c.WatchShutdown()
		s.cancel()
	}()
	open := func(t h3wire.StreamType, rest []byte) (*stream.Stream, error) {
		st, err := c.OpenOutboundStream(ctx, stream.Unidirectional, false)
		if err != nil {
			return nil, err
		}
		_, err = st.Write(append(h3wire.AppendVarint(nil, uint64(t)), rest...))
		return st, err
	}
	var err error
	if s.ctl, err = open(h3wire.StreamControl, h3wire.AppendSettings(nil, ourSettings)); err == nil {
		if s.qpackEnc, err = open(h3wire.StreamQPACKEncoder, nil); err == nil {
			s.qpackDec, err = open(h3wire.StreamQPACKDecoder, nil)
		}
	}
	if err != nil {
		s.fail(h3wire.ConnError(h3wire.InternalError, "opening control streams: %v", err))
		s.wg.Wait()
		return nil, err
	}
	s.wg.Add(1)
	go s.acceptUniStreams()
	return s, nil
}

// fail closes the connection with e's code when e is a connection error.
func (s *session) fail(e *h3wire.Error) {
	s.mu.Lock()
	if s.failed == nil {
		s.failed = e
	}
	s.mu.Unlock()
	s.log.Warn("h3: closing connection", "code", e.Code.String(), "reason", e.Reason)
	_ = s.c.Shutdown(uint64(e.Code))
}

// handleError applies an error met on stream str (nil for none): a
// connection error closes the connection, a stream error aborts str in both
// directions; other errors (the connection or stream already gone) are
// returned as they are.
func (s *session) handleError(str *stream.Stream, err error) {
	var he *h3wire.Error
	if !errors.As(err, &he) {
		return
	}
	if he.Conn {
		s.fail(he)
		return
	}
	if str != nil {
		_ = str.CancelRead(uint64(he.Code))
		_ = str.CancelWrite(uint64(he.Code))
	}
}

// sendGoAway sends GOAWAY with id on our control stream.
func (s *session) sendGoAway(id uint64) error {
	s.ctlMu.Lock()
	defer s.ctlMu.Unlock()
	_, err := s.ctl.Write(h3wire.AppendGoAway(nil, id))
	return err
}

// close shuts the connection down with code and waits for the session's
// goroutines.
func (s *session) close(code h3wire.Code) {
	_ = s.c.Shutdown(uint64(code))
	s.wait()
}

// wait waits until the connection is closed and the session's goroutines
// have exited.
func (s *session) wait() {
	<-s.c.WatchShutdown()
	s.wg.Wait()
}

// requestStarted counts a client request in progress.
func (s *session) requestStarted() {
	s.mu.Lock()
	s.active++
	s.mu.Unlock()
}

// requestDone ends a client request; the last one after the server's
// GOAWAY closes the connection with H3_NO_ERROR, as the server waits for.
func (s *session) requestDone() {
	s.mu.Lock()
	s.active--
	idle := s.active == 0
	s.mu.Unlock()
	if _, goingAway := s.peerGoAway(); idle && goingAway {
		_ = s.c.Shutdown(uint64(h3wire.NoError))
	}
}

// peerGoAway returns the peer's GOAWAY ID and whether it sent one.
func (s *session) peerGoAway() (uint64, bool) {
	select {
	case <-s.goAway:
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.goAwayID, true
	default:
		return 0, false
	}
}

func (s *session) acceptUniStreams() {
	defer s.wg.Done()
	for {
		rs, err := s.c.AcceptInboundUniStream(s.ctx)
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.handleUniStream(rs)
		}()
	}
}

// handleUniStream reads one unidirectional stream from the peer until it
// ends or the connection does.
func (s *session) handleUniStream(rs *stream.ReadStream) {
	fr := h3wire.NewFrameReader(rs)
	v, err := fr.ReadVarint()
	if err != nil {
		// A stream reset or closed before its type says nothing.
		return
	}
	t := h3wire.StreamType(v)
	switch t {
	case h3wire.StreamControl, h3wire.StreamQPACKEncoder, h3wire.StreamQPACKDecoder:
		s.mu.Lock()
		dup := s.peerStreams[t]
		s.peerStreams[t] = true
		s.mu.Unlock()
		if dup {
			s.fail(h3wire.ConnError(h3wire.StreamCreationError, "second stream of type 0x%x", v))
			return
		}
	case h3wire.StreamPush:
		if s.isServer {
			s.fail(h3wire.ConnError(h3wire.StreamCreationError, "client opened a push stream"))
		} else {
			// We never send MAX_PUSH_ID, so any push ID exceeds it.
			s.fail(h3wire.ConnError(h3wire.IDError, "push stream without MAX_PUSH_ID"))
		}
		return
	default:
		// Unknown and reserved (grease) types must be ignored: stop the
		// sender rather than buffer what it sends.
		_ = rs.CancelRead(uint64(h3wire.StreamCreationError))
		return
	}

	if t == h3wire.StreamControl {
		err = s.readControl(fr)
	} else {
		// With a dynamic table capacity of 0 the peer's encoder has
		// nothing to insert and its decoder nothing to acknowledge; what
		// arrives (e.g. Stream Cancellation) needs no action.
		_, err = io.Copy(io.Discard, rs)
		if err == nil {
			err = io.EOF
		}
	}
	if s.ctx.Err() != nil || errors.Is(err, qerr.ErrConnectionLost) {
		return
	}
	var he *h3wire.Error
	if errors.As(err, &he) {
		s.fail(he)
		return
	}
	// Critical streams must stay open for the connection's lifetime.
	s.fail(h3wire.ConnError(h3wire.ClosedCriticalStream, "peer closed its stream of type 0x%x: %v", v, err))
}

// readControl processes the peer's control stream: SETTINGS first, then
// GOAWAY, MAX_PUSH_ID and CANCEL_PUSH; unknown frames are skipped. It
// returns when the stream or the connection ends, or on a violation.
func (s *session) readControl(fr *h3wire.FrameReader) error {
	first := true
	for {
		ft, n, err := fr.Next()
		if err != nil {
			return err
		}
		if first && ft != h3wire.FrameSettings {
			return h3wire.ConnError(h3wire.MissingSettings, "control stream starts with frame 0x%x", uint64(ft))
		}
		switch {
		case ft == h3wire.FrameSettings:
			if !first {
				return h3wire.ConnError(h3wire.FrameUnexpected, "second SETTINGS frame")
			}
			first = false
			p, err := fr.Payload(16<<10, h3wire.ConnError(h3wire.ExcessiveLoad, "SETTINGS of %d bytes", n))
			if err != nil {
				return err
			}
			m, err := h3wire.ParseSettings(p)
			if err != nil {
				return err
			}
			s.mu.Lock()
			s.settings = m
			s.mu.Unlock()
			close(s.settingsReady)
		case ft == h3wire.FrameGoAway:
			p, err := fr.Payload(8, h3wire.ConnError(h3wire.FrameError, "GOAWAY of %d bytes", n))
			if err != nil {
				return err
			}
			id, k := h3wire.ConsumeVarint(p)
			if k == 0 || k != len(p) {
				return h3wire.ConnError(h3wire.FrameError, "malformed GOAWAY")
			}
			if !s.isServer && id%4 != 0 {
				return h3wire.ConnError(h3wire.IDError, "GOAWAY with non-client-bidirectional stream ID %d", id)
			}
			s.mu.Lock()
			select {
			case <-s.goAway:
				if id > s.goAwayID {
					s.mu.Unlock()
					return h3wire.ConnError(h3wire.IDError, "GOAWAY ID increased from %d to %d", s.goAwayID, id)
				}
			default:
				close(s.goAway)
			}
			s.goAwayID = id
			idle := !s.isServer && s.active == 0
			s.mu.Unlock()
			if idle {
				// RFC 9114 section 5.2: with nothing in flight, the client
				// completes the graceful shutdown.
				_ = s.c.Shutdown(uint64(h3wire.NoError))
			}
		case ft == h3wire.FrameMaxPushID:
			if !s.isServer {
				return h3wire.ConnError(h3wire.FrameUnexpected, "MAX_PUSH_ID from a server")
			}
			// We never push; the limit changes nothing.
		case ft == h3wire.FrameCancelPush:
			if !s.isServer {
				// We allowed no push, so no push ID is valid.
				return h3wire.ConnError(h3wire.IDError, "CANCEL_PUSH without MAX_PUSH_ID")
			}
			// A server that never pushes has nothing to cancel.
		case ft == h3wire.FrameData || ft == h3wire.FrameHeaders || ft == h3wire.FramePushPromise || ft.IsHTTP2Reserved():
			return h3wire.ConnError(h3wire.FrameUnexpected, "frame 0x%x on the control stream", uint64(ft))
		default:
			// Unknown and grease frames (e.g. Chromium's PRIORITY_UPDATE,
			// 0xf0700) are skipped by Next.
		}
	}
}

// frameOnRequestStream classifies a frame type that is neither DATA nor
// HEADERS on a request stream: nil for frames to skip, a connection error
// H3_FRAME_UNEXPECTED for those RFC 9114 forbids there.
func frameOnRequestStream(ft h3wire.FrameType, fromServer bool) error {
	switch {
	case ft == h3wire.FrameSettings || ft == h3wire.FrameGoAway || ft == h3wire.FrameMaxPushID ||
		ft == h3wire.FrameCancelPush || ft.IsHTTP2Reserved():
		return h3wire.ConnError(h3wire.FrameUnexpected, "frame 0x%x on a request stream", uint64(ft))
	case ft == h3wire.FramePushPromise:
		if fromServer {
			return h3wire.ConnError(h3wire.IDError, "PUSH_PROMISE without MAX_PUSH_ID")
		}
		return h3wire.ConnError(h3wire.FrameUnexpected, "PUSH_PROMISE from a client")
	}
	return nil
}

// readHeaderBlock reads the payload of a HEADERS frame of length n and
// decodes it.
func readHeaderBlock(fr *h3wire.FrameReader, n uint64) ([]qpackField, error) {
	p, err := fr.Payload(h3wire.MaxFieldSectionSize, h3wire.StreamError(h3wire.ExcessiveLoad, "header block of %d bytes", n))
	if err != nil {
		return nil, err
	}
	return h3wire.DecodeFields(p)
}
