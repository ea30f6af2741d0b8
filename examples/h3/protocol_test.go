package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/qpack"

	"github.com/quicconn/quicconn/certverify"
	"github.com/quicconn/quicconn/conn"
	qerr "github.com/quicconn/quicconn/errors"
	"github.com/quicconn/quicconn/examples/h3/internal/h3wire"
	"github.com/quicconn/quicconn/stream"
)

// rawClient dials srv with ALPN h3 and no HTTP/3 layer, so a test can send
// any bytes.
func rawClient(t *testing.T, srv *ourServer) *conn.Connection {
	t.Helper()
	reg := conn.NewRegistration("h3-raw")
	t.Cleanup(func() { _ = reg.Close() })
	cred := &certverify.Credential{}
	cred.TrustHashes(certverify.HashOf(srv.certDER))
	c, err := conn.New(reg, cred, conn.WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Start(ctx, conn.DefaultConfiguration("h3"), "127.0.0.1", uint16(srv.addr.Port)); err != nil {
		t.Fatal(err)
	}
	return c
}

func openUni(t *testing.T, c *conn.Connection, b []byte, fin bool) *stream.Stream {
	t.Helper()
	s, err := c.OpenOutboundStream(context.Background(), stream.Unidirectional, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.WriteChunks([][]byte{b}, fin); err != nil {
		t.Fatal(err)
	}
	return s
}

func settingsFrame() []byte { return h3wire.AppendSettings(nil, ourSettings) }

func controlStream(extra ...[]byte) []byte {
	b := append([]byte{0x00}, settingsFrame()...)
	for _, e := range extra {
		b = append(b, e...)
	}
	return b
}

func headersFrame(fields ...qpack.HeaderField) []byte {
	return h3wire.AppendFrame(nil, h3wire.FrameHeaders, h3wire.EncodeFields(fields))
}

func getFields(path string) []qpack.HeaderField {
	return []qpack.HeaderField{
		{Name: ":method", Value: "GET"}, {Name: ":scheme", Value: "https"},
		{Name: ":authority", Value: "127.0.0.1"}, {Name: ":path", Value: path},
	}
}

// waitClosedWith waits for the server to close c and checks the code.
func waitClosedWith(t *testing.T, c *conn.Connection, want h3wire.Code) {
	t.Helper()
	select {
	case <-c.WatchShutdown():
	case <-time.After(10 * time.Second):
		t.Fatalf("server did not close the connection; want %s", want)
	}
	var ce *qerr.ConnectionError
	if !errors.As(c.Err(), &ce) || ce.Reason != qerr.ShutdownByPeer || ce.Code != uint64(want) {
		t.Fatalf("connection ended with %v, want closed by peer with %s", c.Err(), want)
	}
}

// requestOn sends raw request bytes on a new bidirectional stream and
// returns the stream.
func requestOn(t *testing.T, c *conn.Connection, b []byte, fin bool) *stream.Stream {
	t.Helper()
	s, err := c.OpenOutboundStream(context.Background(), stream.Bidirectional, false)
	if err != nil {
		t.Fatal(err)
	}
	// The server may reject the request before it is all written.
	var se *qerr.StreamError
	if _, err := s.WriteChunks([][]byte{b}, fin); err != nil && !(errors.As(err, &se) && se.Remote) {
		t.Fatal(err)
	}
	return s
}

// readStatus reads a response on s with the example's own parser.
func readStatus(t *testing.T, s *stream.Stream) (int, string, error) {
	t.Helper()
	_ = s.SetReadDeadline(time.Now().Add(10 * time.Second))
	fr := h3wire.NewFrameReader(s)
	status := 0
	var body strings.Builder
	for {
		ft, n, err := fr.Next()
		if err == io.EOF {
			return status, body.String(), nil
		}
		if err != nil {
			return 0, "", err
		}
		switch ft {
		case h3wire.FrameHeaders:
			p, err := fr.Payload(n, nil)
			if err != nil {
				return 0, "", err
			}
			f, err := h3wire.DecodeFields(p)
			if err != nil {
				return 0, "", err
			}
			if status, _, err = h3wire.ResponseFromFields(f); err != nil {
				return 0, "", err
			}
		case h3wire.FrameData:
			if _, err := io.Copy(&body, fr); err != nil {
				return 0, "", err
			}
		}
	}
}

// TestServerConnectionErrors: violations RFC 9114 makes connection errors
// close the connection with the code it assigns.
func TestServerConnectionErrors(t *testing.T) {
	checkLeaks(t)
	srv := startOurServer(t, testHandler())
	grease := h3wire.AppendFrame(nil, 0x21+0x1f*7, []byte("grease"))
	cases := []struct {
		name string
		send func(t *testing.T, c *conn.Connection)
		want h3wire.Code
	}{
		{"DATA before HEADERS on a request stream", func(t *testing.T, c *conn.Connection) {
			requestOn(t, c, h3wire.AppendFrame(nil, h3wire.FrameData, []byte("x")), true)
		}, h3wire.FrameUnexpected},
		{"SETTINGS on a request stream", func(t *testing.T, c *conn.Connection) {
			requestOn(t, c, settingsFrame(), true)
		}, h3wire.FrameUnexpected},
		{"control stream not starting with SETTINGS", func(t *testing.T, c *conn.Connection) {
			openUni(t, c, append([]byte{0x00}, h3wire.AppendGoAway(nil, 0)...), false)
		}, h3wire.MissingSettings},
		{"second SETTINGS", func(t *testing.T, c *conn.Connection) {
			openUni(t, c, controlStream(settingsFrame()), false)
		}, h3wire.FrameUnexpected},
		{"HTTP/2 frame type on the control stream", func(t *testing.T, c *conn.Connection) {
			openUni(t, c, controlStream(h3wire.AppendFrame(nil, 0x08, []byte{0, 0, 0, 1})), false)
		}, h3wire.FrameUnexpected},
		{"HEADERS on the control stream", func(t *testing.T, c *conn.Connection) {
			openUni(t, c, controlStream(headersFrame(getFields("/")...)), false)
		}, h3wire.FrameUnexpected},
		{"HTTP/2 setting", func(t *testing.T, c *conn.Connection) {
			openUni(t, c, append([]byte{0x00}, h3wire.AppendSettings(nil, []h3wire.Setting{{ID: 0x02, Value: 1}})...), false)
		}, h3wire.SettingsError},
		{"two control streams", func(t *testing.T, c *conn.Connection) {
			openUni(t, c, controlStream(), false)
			openUni(t, c, controlStream(), false)
		}, h3wire.StreamCreationError},
		{"control stream closed", func(t *testing.T, c *conn.Connection) {
			openUni(t, c, controlStream(grease), true)
		}, h3wire.ClosedCriticalStream},
		{"push stream from a client", func(t *testing.T, c *conn.Connection) {
			openUni(t, c, []byte{0x01, 0x00}, false)
		}, h3wire.StreamCreationError},
		{"frame truncated by FIN", func(t *testing.T, c *conn.Connection) {
			b := headersFrame(getFields("/")...)
			requestOn(t, c, b[:len(b)-2], true)
		}, h3wire.FrameError},
		{"header block referencing the dynamic table", func(t *testing.T, c *conn.Connection) {
			// Required Insert Count 1: a table we allowed no room for.
			requestOn(t, c, h3wire.AppendFrame(nil, h3wire.FrameHeaders, []byte{0x02, 0x00, 0x80}), true)
		}, h3wire.QPACKDecompressionFailed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := rawClient(t, srv)
			tc.send(t, c)
			waitClosedWith(t, c, tc.want)
		})
	}
}

// TestServerStreamErrors: malformed requests reset only their stream, with
// the code RFC 9114 assigns, and the connection goes on serving.
func TestServerStreamErrors(t *testing.T) {
	checkLeaks(t)
	srv := startOurServer(t, testHandler())
	c := rawClient(t, srv)
	openUni(t, c, controlStream(), false)
	post := func(cl string, body string) []byte {
		f := []qpack.HeaderField{
			{Name: ":method", Value: "POST"}, {Name: ":scheme", Value: "https"},
			{Name: ":authority", Value: "127.0.0.1"}, {Name: ":path", Value: "/sha256"},
			{Name: "content-length", Value: cl},
		}
		return append(headersFrame(f...), h3wire.AppendFrame(nil, h3wire.FrameData, []byte(body))...)
	}
	cases := []struct {
		name string
		req  []byte
		want h3wire.Code
	}{
		{"FIN before HEADERS", nil, h3wire.RequestIncomplete},
		{"upper-case field name", headersFrame(append(getFields("/"), qpack.HeaderField{Name: "X-Upper", Value: "1"})...), h3wire.MessageError},
		{"missing :path", headersFrame(getFields("/")[:3]...), h3wire.MessageError},
		{"pseudo-header after a regular field", headersFrame(append([]qpack.HeaderField{{Name: "accept", Value: "*/*"}}, getFields("/")...)...), h3wire.MessageError},
		{"connection-specific field", headersFrame(append(getFields("/"), qpack.HeaderField{Name: "connection", Value: "close"})...), h3wire.MessageError},
		{"content shorter than content-length", post("10", "short"), h3wire.MessageError},
		{"content longer than content-length", post("2", "too long"), h3wire.MessageError},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := requestOn(t, c, tc.req, true)
			_, _, err := readStatus(t, s)
			var se *qerr.StreamError
			if !errors.As(err, &se) || !se.Remote || se.Code != uint64(tc.want) {
				t.Fatalf("read: %v, want the stream reset by the server with %s", err, tc.want)
			}
		})
	}
	t.Run("connection still serves", func(t *testing.T) {
		status, body, err := readStatus(t, requestOn(t, c, headersFrame(getFields("/")...), true))
		if err != nil || status != 200 || body != smallPage {
			t.Fatalf("got %d %q %v", status, body, err)
		}
	})
}

// TestServerIgnoresUnknown: reserved (grease) stream types, frame types and
// settings are ignored, as RFC 9114 section 9 requires.
func TestServerIgnoresUnknown(t *testing.T) {
	checkLeaks(t)
	srv := startOurServer(t, testHandler())
	c := rawClient(t, srv)
	grease := h3wire.AppendFrame(nil, 0x21+0x1f*3, []byte("ignore me"))
	greaseSettings := append([]byte{0x00}, h3wire.AppendSettings(nil, append(ourSettings, h3wire.Setting{ID: 0x21 + 0x1f*5, Value: 42}))...)
	openUni(t, c, append(greaseSettings, grease...), false)
	openUni(t, c, append(h3wire.AppendVarint(nil, 0x21+0x1f*9), "unknown stream type"...), false)
	openUni(t, c, append(h3wire.AppendVarint(nil, 0x54), "another unknown type"...), true)
	openUni(t, c, []byte{0x02}, false) // QPACK encoder
	openUni(t, c, []byte{0x03}, false) // QPACK decoder
	req := append(append([]byte{}, grease...), headersFrame(getFields("/")...)...)
	req = append(req, grease...)
	status, body, err := readStatus(t, requestOn(t, c, req, true))
	if err != nil || status != 200 || body != smallPage {
		t.Fatalf("got %d %q %v, want 200 and the page", status, body, err)
	}
	if c.State() != conn.Connected {
		t.Fatalf("connection %s: %v", c.State(), c.Err())
	}
}

// TestGoAway: Shutdown sends GOAWAY, lets the request in flight finish,
// then closes the connection with H3_NO_ERROR.
func TestGoAway(t *testing.T) {
	checkLeaks(t)
	release := make(chan struct{})
	started := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
		_, _ = io.WriteString(w, "finished")
	})
	srv := startOurServer(t, mux)
	cred := &certverify.Credential{}
	cred.TrustHashes(certverify.HashOf(srv.certDER))
	tr := &Transport{Credential: cred, Logger: quietLogger()}
	defer tr.Close()
	var (
		wg   sync.WaitGroup
		resp *http.Response
		body []byte
		err  error
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		req, _ := http.NewRequest("GET", srv.url("/slow"), nil)
		if resp, err = tr.RoundTrip(req); err == nil {
			body, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
	}()
	<-started
	shutdownDone := make(chan struct{})
	go func() {
		srv.shutdown()
		close(shutdownDone)
	}()
	// The client learns of the GOAWAY while its request is in flight.
	tr.mu.Lock()
	cc := tr.conns[srv.addr.String()]
	tr.mu.Unlock()
	<-cc.ready
	deadline := time.Now().Add(10 * time.Second)
	for {
		if id, ok := cc.sess.peerGoAway(); ok {
			if id != 4 {
				t.Errorf("GOAWAY ID %d, want 4 (after the one request, stream 0)", id)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no GOAWAY")
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(release)
	wg.Wait()
	if err != nil || string(body) != "finished" {
		t.Fatalf("request in flight: %q, %v", body, err)
	}
	<-shutdownDone
	<-cc.sess.c.WatchShutdown()
	var ce *qerr.ConnectionError
	if !errors.As(cc.sess.c.Err(), &ce) || ce.Code != uint64(h3wire.NoError) {
		t.Fatalf("connection ended with %v, want H3_NO_ERROR", cc.sess.c.Err())
	}
}
