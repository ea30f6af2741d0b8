package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// interopSuite runs the exchanges every client/server pair must get right.
func interopSuite(t *testing.T, c *http.Client, url func(string) string) {
	_, bigSum := bigFile()
	t.Run("small page", func(t *testing.T) {
		status, body, _ := get(t, c, url("/"))
		if status != http.StatusOK || string(body) != smallPage {
			t.Fatalf("got %d %q, want 200 %q", status, body, smallPage)
		}
	})
	t.Run("16 MiB file", func(t *testing.T) {
		status, body, d := get(t, c, url("/big"))
		sum := sha256.Sum256(body)
		if status != http.StatusOK || len(body) != bigSize || hex.EncodeToString(sum[:]) != bigSum {
			t.Fatalf("got %d, %d bytes, sha256 %x; want 200, %d bytes, %s", status, len(body), sum, bigSize, bigSum)
		}
		t.Logf("16 MiB in %s (%.0f MB/s)", d.Round(time.Millisecond), bigSize/d.Seconds()/1e6)
	})
	t.Run("100 concurrent requests", func(t *testing.T) {
		var wg sync.WaitGroup
		errs := make(chan error, 100)
		for i := range 100 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := c.Get(url(fmt.Sprintf("/n/%d", i)))
				if err != nil {
					errs <- err
					return
				}
				defer resp.Body.Close()
				b, err := io.ReadAll(resp.Body)
				if err != nil {
					errs <- err
					return
				}
				if want := fmt.Sprintf("item %d", i); resp.StatusCode != 200 || string(b) != want {
					errs <- fmt.Errorf("request %d: got %d %q, want 200 %q", i, resp.StatusCode, b, want)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})
	t.Run("404", func(t *testing.T) {
		status, _, _ := get(t, c, url("/no/such/page"))
		if status != http.StatusNotFound {
			t.Fatalf("got %d, want 404", status)
		}
	})
	t.Run("POST body", func(t *testing.T) {
		body := strings.Repeat("quicconn ", 100_000)
		resp, err := c.Post(url("/sha256"), "text/plain", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		got, _ := io.ReadAll(resp.Body)
		sum := sha256.Sum256([]byte(body))
		if want := fmt.Sprintf("%x %d", sum, len(body)); string(got) != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	})
}

// TestOurClientQuicGoServer: the example's client against quic-go's
// http3.Server.
func TestOurClientQuicGoServer(t *testing.T) {
	checkLeaks(t)
	srv := startQuicGoServer(t, testHandler())
	interopSuite(t, ourClient(t, srv.certDER), srv.url)
}

// TestQuicGoClientOurServer: quic-go's http3.Transport against the example's
// server, which must see every request as HTTP/3.
func TestQuicGoClientOurServer(t *testing.T) {
	checkLeaks(t)
	srv := startOurServer(t, testHandler())
	interopSuite(t, quicGoClient(t, srv.certDER), srv.url)
	e, ok := srv.log.find("GET", "/big")
	if !ok || e.Proto != "HTTP/3" || e.Status != 200 || e.Bytes != bigSize {
		t.Errorf("access log for GET /big: %+v (found %v), want HTTP/3 200 %d bytes", e, ok, bigSize)
	}
}

// TestOurClientOurServer: the example against itself.
func TestOurClientOurServer(t *testing.T) {
	checkLeaks(t)
	srv := startOurServer(t, testHandler())
	interopSuite(t, ourClient(t, srv.certDER), srv.url)
}

// TestTransferTimings downloads 16 MiB for each client/server pair, quic-go
// with itself as the reference, and logs the timings (-v shows them). By
// default each pair transfers once; with H3_TIMINGS=1 it makes 9 alternated
// rounds and adds Chromium's fetch() from both servers, for the figures in
// the README (run that without -race for meaningful numbers).
func TestTransferTimings(t *testing.T) {
	checkLeaks(t)
	measure := os.Getenv("H3_TIMINGS") != ""
	runs := 1
	if measure {
		runs = 9
	}
	ours := startOurServer(t, testHandler())
	theirs := startQuicGoServer(t, testHandler())
	pairs := []struct {
		name   string
		client *http.Client
		url    func(string) string
	}{
		{"quic-go client -> quic-go server", quicGoClient(t, theirs.certDER), theirs.url},
		{"our client     -> quic-go server", ourClient(t, theirs.certDER), theirs.url},
		{"quic-go client -> our server   ", quicGoClient(t, ours.certDER), ours.url},
		{"our client     -> our server   ", ourClient(t, ours.certDER), ours.url},
	}
	// Rounds go across the pairs, so that the machine's load (shared cores)
	// and the GC's warm-up weigh on every pair alike.
	ds := make([][]time.Duration, len(pairs))
	for _, p := range pairs {
		get(t, p.client, p.url("/")) // connect first: time the transfer only
	}
	for range runs {
		for i, p := range pairs {
			_, body, d := get(t, p.client, p.url("/big"))
			if len(body) != bigSize {
				t.Fatalf("%s: %d bytes", p.name, len(body))
			}
			ds[i] = append(ds[i], d)
		}
	}
	for i, p := range pairs {
		d := ds[i]
		sort.Slice(d, func(a, b int) bool { return d[a] < d[b] })
		med := d[len(d)/2]
		t.Logf("%s: 16 MiB median %s (%.0f MB/s), best %s, worst %s (%d runs)", p.name,
			med.Round(time.Millisecond), bigSize/med.Seconds()/1e6, d[0].Round(time.Millisecond), d[len(d)-1].Round(time.Millisecond), len(d))
	}
	if _, err := exec.LookPath("chromium"); err != nil || !measure {
		return
	}
	// Chromium's fetch() of the same file, from each server.
	for range 2 {
		x := &fetchExchange{}
		srv := startOurServer(t, x.handler())
		dom := chromiumDumpDOM(t, srv, "/")
		d := x.check(t, dom)
		t.Logf("chromium       -> our server   : 16 MiB fetch+digest %d ms in page, %s at the server", x.ms, d.Round(time.Millisecond))
		srv.shutdown()

		y := &fetchExchange{}
		qs := startQuicGoServer(t, y.handler())
		spki, err := spkiOf(qs.certDER)
		if err != nil {
			t.Fatal(err)
		}
		dom = chromiumDumpDOMAt(t, qs.addr, spki, "/")
		d = y.check(t, dom)
		t.Logf("chromium       -> quic-go server: 16 MiB fetch+digest %d ms in page, %s at the server", y.ms, d.Round(time.Millisecond))
	}
}
