package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/quic-go/qpack"

	"github.com/quicconn/quicconn/certverify"
	"github.com/quicconn/quicconn/conn"
	qerr "github.com/quicconn/quicconn/errors"
	"github.com/quicconn/quicconn/examples/h3/internal/h3wire"
	"github.com/quicconn/quicconn/stream"
)

// rawServer accepts one connection with ALPN h3 and no HTTP/3 layer, sends
// ctl (when not nil) on a control stream, answers the first request with
// resp (and FIN), and reports how the connection ended.
func rawServer(t *testing.T, ctl, resp []byte, extra func(c *conn.Connection)) (url string, der []byte, ended <-chan error) {
	t.Helper()
	cred, err := serverCredential("127.0.0.1", "", "")
	if err != nil {
		t.Fatal(err)
	}
	reg := conn.NewRegistration("h3-raw-server")
	l, err := listenH3(reg, "127.0.0.1:0", cred, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	done := make(chan error, 1)
	go func() {
		c, err := l.Accept(ctx)
		if err != nil {
			done <- err
			return
		}
		if err := c.Accept(ctx); err != nil {
			done <- err
			return
		}
		if ctl != nil {
			s, err := c.OpenOutboundStream(ctx, stream.Unidirectional, false)
			if err == nil {
				_, _ = s.Write(ctl)
			}
		}
		if extra != nil {
			extra(c)
		}
		if str, err := c.AcceptInboundStream(ctx); err == nil {
			fr := h3wire.NewFrameReader(str)
			for {
				if _, _, err := fr.Next(); err != nil {
					break
				}
			}
			_, _ = str.WriteChunks([][]byte{resp}, true)
		}
		select {
		case <-c.WatchShutdown():
		case <-ctx.Done():
		}
		done <- c.Err()
	}()
	t.Cleanup(func() {
		cancel()
		_ = reg.Close()
	})
	return "https://" + l.Addr().String() + "/", cred.Certificate.Certificate[0], done
}

func respHeaders(status string, fields ...qpack.HeaderField) []byte {
	return headersFrame(append([]qpack.HeaderField{{Name: ":status", Value: status}}, fields...)...)
}

// TestClientProtocol: our client against servers that break or stretch
// RFC 9114.
func TestClientProtocol(t *testing.T) {
	checkLeaks(t)
	grease := h3wire.AppendFrame(nil, 0x21+0x1f*4, []byte("grease"))
	data := func(s string) []byte { return h3wire.AppendFrame(nil, h3wire.FrameData, []byte(s)) }
	cat := func(bs ...[]byte) []byte {
		var out []byte
		for _, b := range bs {
			out = append(out, b...)
		}
		return out
	}
	cases := []struct {
		name        string
		ctl         []byte
		resp        []byte
		extra       func(c *conn.Connection)
		wantBody    string      // success: the body
		wantTrailer string      // and its X-Trailer
		wantCode    h3wire.Code // failure: the code the client closes with
	}{
		{name: "grease frames, an interim response and trailers are fine",
			ctl:      controlStream(grease),
			resp:     cat(grease, respHeaders("103", qpack.HeaderField{Name: "link", Value: "</a.css>"}), respHeaders("200"), grease, data("hel"), data("lo"), headersFrame(qpack.HeaderField{Name: "x-trailer", Value: "1"})),
			wantBody: "hello", wantTrailer: "1"},
		{name: "grease stream types are ignored",
			ctl:  controlStream(),
			resp: cat(respHeaders("200"), data("ok")),
			extra: func(c *conn.Connection) {
				s, err := c.OpenOutboundStream(context.Background(), stream.Unidirectional, false)
				if err == nil {
					_, _ = s.Write(append(h3wire.AppendVarint(nil, 0x21+0x1f*11), "whatever"...))
				}
			},
			wantBody: "ok"},
		{name: "DATA before HEADERS", ctl: controlStream(), resp: data("x"), wantCode: h3wire.FrameUnexpected},
		{name: "DATA after trailers", ctl: controlStream(), resp: cat(respHeaders("200"), headersFrame(qpack.HeaderField{Name: "x-trailer", Value: "1"}), data("x")), wantCode: h3wire.FrameUnexpected},
		{name: "PUSH_PROMISE without MAX_PUSH_ID", ctl: controlStream(), resp: cat(h3wire.AppendFrame(nil, h3wire.FramePushPromise, []byte{0, 0, 0}), respHeaders("200")), wantCode: h3wire.IDError},
		{name: "control stream without SETTINGS first", ctl: append([]byte{0x00}, h3wire.AppendGoAway(nil, 0)...), resp: nil, wantCode: h3wire.MissingSettings},
		{name: "GOAWAY with a non-request stream ID", ctl: controlStream(h3wire.AppendGoAway(nil, 2)), resp: nil, wantCode: h3wire.IDError},
		{name: "MAX_PUSH_ID from a server", ctl: controlStream(h3wire.AppendFrame(nil, h3wire.FrameMaxPushID, []byte{1})), resp: nil, wantCode: h3wire.FrameUnexpected},
		{name: "push stream", ctl: controlStream(), extra: func(c *conn.Connection) {
			s, err := c.OpenOutboundStream(context.Background(), stream.Unidirectional, false)
			if err == nil {
				_, _ = s.Write([]byte{0x01, 0x00})
			}
		}, wantCode: h3wire.IDError},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			url, der, ended := rawServer(t, tc.ctl, tc.resp, tc.extra)
			cred := &certverify.Credential{}
			cred.TrustHashes(certverify.HashOf(der))
			tr := &Transport{Credential: cred, Logger: quietLogger()}
			defer tr.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
			resp, err := tr.RoundTrip(req)
			var body []byte
			if err == nil {
				body, err = io.ReadAll(resp.Body)
				resp.Body.Close()
			}
			if tc.wantCode == 0 {
				if err != nil || string(body) != tc.wantBody || resp.StatusCode != 200 {
					t.Fatalf("got %q, %v; want 200 %q", body, err, tc.wantBody)
				}
				if got := resp.Body.(*responseBody).r.trailer.Get("X-Trailer"); got != tc.wantTrailer {
					t.Errorf("trailer X-Trailer %q, want %q", got, tc.wantTrailer)
				}
				return
			}
			var connErr error
			select {
			case connErr = <-ended:
			case <-time.After(15 * time.Second):
				t.Fatal("the client did not close the connection")
			}
			var ce *qerr.ConnectionError
			if !errors.As(connErr, &ce) || ce.Reason != qerr.ShutdownByPeer || ce.Code != uint64(tc.wantCode) {
				t.Fatalf("server saw %v (request: %v), want the client to close with %s", connErr, err, tc.wantCode)
			}
		})
	}
}
