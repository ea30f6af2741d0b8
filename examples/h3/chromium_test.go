package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// chromiumMissing is what the Chromium tests say when there is none.
const chromiumMissing = "chromium not found (neither /usr/bin/chromium nor chromium in PATH): run .ci/chromium to install Debian's chromium"

// findChromium looks for Chromium with stat and lookPath. Absent, it
// reports fail in CI (ci is the value of $CI), where .ci/chromium must have
// installed it, and a skip elsewhere.
func findChromium(stat func(string) (os.FileInfo, error), lookPath func(string) (string, error), ci string) (path string, fail bool) {
	if _, err := stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium", false
	}
	if p, err := lookPath("chromium"); err == nil {
		return p, false
	}
	return "", ci == "true"
}

// chromiumPath returns Chromium's path, or fails (CI=true) or skips the test.
func chromiumPath(t *testing.T) string {
	t.Helper()
	p, fail := findChromium(os.Stat, exec.LookPath, os.Getenv("CI"))
	switch {
	case p != "":
		return p
	case fail:
		t.Fatal(chromiumMissing)
	default:
		t.Skip(chromiumMissing)
	}
	return ""
}

func TestFindChromium(t *testing.T) {
	absent := func(string) (os.FileInfo, error) { return nil, os.ErrNotExist }
	present := func(string) (os.FileInfo, error) { return nil, nil }
	notInPath := func(string) (string, error) { return "", exec.ErrNotFound }
	inPath := func(string) (string, error) { return "/opt/bin/chromium", nil }
	cases := []struct {
		name     string
		stat     func(string) (os.FileInfo, error)
		lookPath func(string) (string, error)
		ci       string
		path     string
		fail     bool
	}{
		{"/usr/bin/chromium first", present, inPath, "true", "/usr/bin/chromium", false},
		{"else chromium in PATH", absent, inPath, "true", "/opt/bin/chromium", false},
		{"absent in CI fails", absent, notInPath, "true", "", true},
		{"absent outside CI skips", absent, notInPath, "", "", false},
	}
	for _, tc := range cases {
		path, fail := findChromium(tc.stat, tc.lookPath, tc.ci)
		if path != tc.path || fail != tc.fail {
			t.Errorf("%s: got (%q, %v), want (%q, %v)", tc.name, path, fail, tc.path, tc.fail)
		}
	}
}

// chromiumDumpDOM loads url in headless Chromium, forced onto QUIC for
// the server's origin and trusting its key by SPKI hash, and returns the DOM
// at the load event. Chromium's exit status says nothing about the load, so
// callers check the DOM.
func chromiumDumpDOM(t *testing.T, srv *ourServer, path string) string {
	t.Helper()
	return chromiumDumpDOMAt(t, srv.addr.String(), srv.spki, path)
}

// chromiumDumpDOMAt is chromiumDumpDOM for any server at hostport whose
// key has the base64 SPKI hash spki.
func chromiumDumpDOMAt(t *testing.T, hostport, spki, path string) string {
	t.Helper()
	bin := chromiumPath(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := chromiumArgs(hostport, spki, t.TempDir())
	args = append(args, "--dump-dom", "https://"+hostport+path)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.WaitDelay = 5 * time.Second
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if ctx.Err() != nil {
		t.Fatalf("chromium did not finish in 60s; stderr:\n%s", tail(stderr.String(), 4000))
	}
	if err != nil {
		t.Fatalf("chromium: %v; stderr:\n%s", err, tail(stderr.String(), 4000))
	}
	t.Logf("chromium %s: %d bytes of DOM", path, len(out))
	return string(out)
}

// chromiumArgs is the command line the tests and the README use; hostport
// must be an IP literal (Chromium resolves localhost to ::1 only), and the
// resolver rule keeps Chromium from looking any name up off the machine.
func chromiumArgs(hostport, spki, profileDir string) []string {
	return []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + profileDir,
		"--origin-to-force-quic-on=" + hostport,
		"--ignore-certificate-errors-spki-list=" + spki,
		"--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// TestChromiumLoadsPage: Chromium loads the built-in page from our server
// over QUIC; the server's access log proves the request came over HTTP/3 and
// the dumped DOM proves the page arrived.
func TestChromiumLoadsPage(t *testing.T) {
	checkLeaks(t)
	srv := startOurServer(t, builtinPage{})
	dom := chromiumDumpDOM(t, srv, "/")
	if !strings.Contains(dom, `<p id="proto">This page came over HTTP/3 from quicconn's h3 example.</p>`) {
		t.Fatalf("page content missing from the DOM:\n%s", tail(dom, 2000))
	}
	srv.shutdown()
	e, ok := srv.log.find("GET", "/")
	if !ok || e.Proto != "HTTP/3" || e.Status != http.StatusOK {
		t.Fatalf("server log for GET /: %+v (found %v), want HTTP/3 200", e, ok)
	}
	t.Logf("server saw: %s %s", e.Remote, e)
}

// fetchPage makes Chromium download /big with fetch(), hash it with
// crypto.subtle and report the hash to /result. The parser-blocking
// /hold.js, which the server answers only after /result, keeps the load
// event (and so --dump-dom) waiting for the whole exchange.
const fetchPage = `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>fetch 16 MiB</title></head>
<body>
<p id="result">pending</p>
<script>
const t0 = performance.now();
fetch('/big')
  .then(r => { if (!r.ok) throw new Error('status ' + r.status); return r.arrayBuffer(); })
  .then(b => crypto.subtle.digest('SHA-256', b).then(d => [b.byteLength, d]))
  .then(([n, d]) => {
    const hex = Array.from(new Uint8Array(d), x => x.toString(16).padStart(2, '0')).join('');
    const ms = Math.round(performance.now() - t0);
    document.getElementById('result').textContent = 'sha256=' + hex + ' bytes=' + n + ' ms=' + ms;
    return fetch('/result?sha256=' + hex + '&bytes=' + n + '&ms=' + ms);
  })
  .catch(e => {
    document.getElementById('result').textContent = 'error: ' + e;
    return fetch('/result?error=' + encodeURIComponent(String(e)));
  });
</script>
<script src="/hold.js"></script>
</body></html>
`

// fetchExchange serves fetchPage and records what the page reports.
type fetchExchange struct {
	mu       sync.Mutex
	bigStart time.Time
	query    string
	sha      string
	bytes    int
	ms       int
	received time.Time
	resultIn chan struct{}
	once     sync.Once
}

// handler serves / (fetchPage), /big, /result and /hold.js.
func (x *fetchExchange) handler() http.Handler {
	x.resultIn = make(chan struct{})
	big := testHandler()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, fetchPage)
	})
	mux.HandleFunc("GET /big", func(w http.ResponseWriter, r *http.Request) {
		x.mu.Lock()
		x.bigStart = time.Now()
		x.mu.Unlock()
		big.ServeHTTP(w, r)
	})
	mux.HandleFunc("GET /result", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		x.mu.Lock()
		x.query, x.sha, x.received = r.URL.RawQuery, q.Get("sha256"), time.Now()
		x.bytes, _ = strconv.Atoi(q.Get("bytes"))
		x.ms, _ = strconv.Atoi(q.Get("ms"))
		x.mu.Unlock()
		x.once.Do(func() { close(x.resultIn) })
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /hold.js", func(w http.ResponseWriter, r *http.Request) {
		timer := time.NewTimer(55 * time.Second)
		defer timer.Stop()
		select {
		case <-x.resultIn:
		case <-r.Context().Done():
		case <-timer.C:
		}
		w.Header().Set("Content-Type", "text/javascript")
		_, _ = io.WriteString(w, "// the result has arrived\n")
	})
	return mux
}

// check verifies the reported hash and returns the server-side time from
// GET /big to the result.
func (x *fetchExchange) check(t *testing.T, dom string) time.Duration {
	t.Helper()
	_, bigSum := bigFile()
	x.mu.Lock()
	defer x.mu.Unlock()
	select {
	case <-x.resultIn:
	default:
		t.Fatalf("the page never reported a result; DOM:\n%s", tail(dom, 2000))
	}
	if x.sha != bigSum || x.bytes != bigSize {
		t.Fatalf("Chromium reported %q, want sha256=%s bytes=%d", x.query, bigSum, bigSize)
	}
	want := fmt.Sprintf("sha256=%s bytes=%d", bigSum, bigSize)
	if !regexp.MustCompile(regexp.QuoteMeta(want) + ` ms=\d+`).MatchString(dom) {
		t.Errorf("DOM lacks %q:\n%s", want, tail(dom, 2000))
	}
	return x.received.Sub(x.bigStart)
}

// TestChromiumFetch16MiB: end-to-end integrity of a 16 MiB download by
// Chromium from our server, checked by the SHA-256 the page computes.
func TestChromiumFetch16MiB(t *testing.T) {
	checkLeaks(t)
	x := &fetchExchange{}
	srv := startOurServer(t, x.handler())
	dom := chromiumDumpDOM(t, srv, "/")
	srv.shutdown()
	wall := x.check(t, dom)
	e, ok := srv.log.find("GET", "/big")
	if !ok || e.Proto != "HTTP/3" || e.Status != http.StatusOK || e.Bytes != bigSize {
		t.Errorf("server log for GET /big: %+v (found %v), want HTTP/3 200 %d bytes", e, ok, bigSize)
	}
	t.Logf("Chromium fetched 16 MiB over HTTP/3 from our server and hashed it: page-measured %d ms (fetch+digest), server-measured %s from GET /big to /result (%.0f MB/s); server log: %s",
		x.ms, wall.Round(time.Millisecond), bigSize/wall.Seconds()/1e6, e)
}
