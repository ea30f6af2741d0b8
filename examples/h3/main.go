// Command h3 is a small HTTP/3 (RFC 9114) server and client written against
// quicconn's Connection API (packages conn, stream and certverify) alone.
//
// Serve a directory, or a built-in page without -dir:
//
//	go run ./examples/h3 -listen 127.0.0.1:4433 -dir ./www
//
// The server generates a self-signed ECDSA P-256 certificate for the listen
// host (or loads -cert/-key) and prints two fingerprints: the certificate's
// SHA-256 (hex, for -pin here) and its public key's SHA-256 SPKI hash
// (base64, for Chromium's --ignore-certificate-errors-spki-list, and also
// accepted by -pin). Browsers present no client certificate, so the server
// asks for none. Each request is logged with its method, path, protocol
// ("HTTP/3") and status.
//
// Fetch a URL:
//
//	go run ./examples/h3 -get https://127.0.0.1:4433/ -pin <hash>
//
// The client's trust default is the system's CA roots with the host name
// checked, as a browser does (a certverify credential that pins nothing and
// has no roots would refuse every server). -pin HASH trusts exactly one
// certificate (hex SHA-256 of the DER) or public key (base64 SPKI SHA-256,
// which survives the server's renewing its certificate with the same key)
// instead; -insecure accepts any server and is for tests against throwaway
// self-signed servers only: anyone on the path can then impersonate the
// server.
package main

import (
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/quicconn/quicconn/certverify"
	"github.com/quicconn/quicconn/conn"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("h3", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "", "serve HTTP/3 on this UDP address (host:port)")
	dir := fs.String("dir", "", "serve the files under this directory (default: a built-in page)")
	certFile := fs.String("cert", "", "server certificate chain (PEM); default: a fresh self-signed ECDSA certificate")
	keyFile := fs.String("key", "", "server private key (PEM), with -cert")
	get := fs.String("get", "", "fetch this https:// URL over HTTP/3 and print status, headers and body")
	out := fs.String("o", "", "with -get: write the body to this file instead of stdout")
	pin := fs.String("pin", "", "with -get: trust only this server: hex SHA-256 of its certificate or base64 SHA-256 of its SPKI (comma-separated for several)")
	insecure := fs.Bool("insecure", false, "with -get: accept ANY server certificate (tests against self-signed servers only; no authentication)")
	verbose := fs.Bool("v", false, "log connection events")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch {
	case *listen != "" && *get == "":
		err = serve(ctx, *listen, *dir, *certFile, *keyFile, logger, stdout)
	case *get != "" && *listen == "":
		err = fetch(ctx, *get, *out, *pin, *insecure, logger, stdout, stderr)
	default:
		fmt.Fprintln(stderr, "h3: give either -listen ADDR (server) or -get URL (client)")
		fs.Usage()
		return 2
	}
	if err != nil {
		fmt.Fprintln(stderr, "h3:", err)
		return 1
	}
	return 0
}

// serverCredential loads -cert/-key or generates a self-signed ECDSA P-256
// certificate for host (and localhost). Clients are not asked for a
// certificate: browsers have none.
func serverCredential(host, certFile, keyFile string) (*certverify.Credential, error) {
	var cred *certverify.Credential
	var err error
	if certFile != "" || keyFile != "" {
		cred, err = certverify.LoadKeyPair(certFile, keyFile)
	} else {
		subjects := []string{"localhost"}
		if host != "" && host != "localhost" && host != "0.0.0.0" && host != "::" {
			subjects = []string{host, "localhost"}
		}
		cred, err = certverify.GenerateSelfSigned(subjects, nil)
	}
	if err != nil {
		return nil, err
	}
	cred.ClientAuth = certverify.NoClientCert
	return cred, nil
}

// spkiHash returns the base64 SHA-256 of the leaf's SubjectPublicKeyInfo.
func spkiHash(cred *certverify.Credential) (string, error) {
	if len(cred.Certificate.Certificate) == 0 {
		return "", errors.New("credential has no certificate")
	}
	h, err := certverify.SPKIHashOf(cred.Certificate.Certificate[0])
	if err != nil {
		return "", err
	}
	return h.String(), nil
}

// listenH3 starts a quicconn listener for HTTP/3.
func listenH3(reg *conn.Registration, addr string, cred *certverify.Credential, logger *slog.Logger) (*conn.Listener, error) {
	cfg, err := conn.NewConfiguration([]string{"h3"}, conn.Settings{})
	if err != nil {
		return nil, err
	}
	return conn.Listen(reg, addr, cfg, cred, conn.WithLogger(logger))
}

func serve(ctx context.Context, addr, dir, certFile, keyFile string, logger *slog.Logger, stdout io.Writer) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	handler := http.Handler(builtinPage{})
	if dir != "" {
		if handler, err = dirHandler(dir); err != nil {
			return err
		}
	}
	cred, err := serverCredential(host, certFile, keyFile)
	if err != nil {
		return err
	}
	spki, err := spkiHash(cred)
	if err != nil {
		return err
	}
	reg := conn.NewRegistration("h3-server")
	defer reg.Close()
	l, err := listenH3(reg, addr, cred, logger)
	if err != nil {
		return err
	}
	hostport := l.Addr().String()
	fmt.Fprintf(stdout, "h3: serving HTTP/3 on udp %s (%s)\n", hostport, describe(dir))
	fmt.Fprintf(stdout, "h3: certificate SHA-256 (hex, for -pin):  %s\n", cred.Identity())
	fmt.Fprintf(stdout, "h3: SPKI SHA-256 (base64, for Chromium):  %s\n", spki)
	fmt.Fprintf(stdout, "h3: try: go run ./examples/h3 -get https://%s/ -pin %s\n", hostport, spki)
	fmt.Fprintf(stdout, "h3: or:  chromium --origin-to-force-quic-on=%s --ignore-certificate-errors-spki-list=%s https://%s/\n", hostport, spki, hostport)

	srv := &Server{
		Handler: handler,
		Logger:  logger,
		AccessLog: func(e AccessEntry) {
			fmt.Fprintf(stdout, "%s %s %s\n", time.Now().Format(time.TimeOnly), e.Remote, e)
		},
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ctx, l) }()
	<-ctx.Done()
	fmt.Fprintln(stdout, "h3: shutting down (GOAWAY)")
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	<-errc
	return nil
}

func describe(dir string) string {
	if dir == "" {
		return "built-in page"
	}
	return "directory " + dir
}

// dirHandler serves the files under dir. os.Root confines every open to dir:
// neither ".." nor a symbolic link can reach outside it.
func dirHandler(dir string) (http.Handler, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	return http.FileServerFS(root.FS()), nil
}

// builtinPage is what the server shows without -dir.
type builtinPage struct{}

func (builtinPage) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		http.NotFound(w, r)
		return
	}
	body := fmt.Sprintf(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>quicconn HTTP/3</title></head>
<body><h1>Hello over %s</h1>
<p id="proto">This page came over %s from quicconn's h3 example.</p>
<p>You asked for %s with %s.</p>
</body></html>
`, "HTTP/3", "HTTP/3", htmlEscape(r.URL.RequestURI()), htmlEscape(r.Method))
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	_, _ = io.WriteString(w, body)
}

func htmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(s)
}

// clientTrust builds the client's credential from -pin and -insecure; see
// the package documentation for the default.
func clientTrust(pin string, insecure bool) (*certverify.Credential, error) {
	cred := &certverify.Credential{}
	switch {
	case insecure:
		cred.InsecureAcceptAnyPeer = true
		return cred, nil
	case pin != "":
		for _, p := range strings.Split(pin, ",") {
			p = strings.TrimSpace(p)
			if h, err := certverify.ParseCertHash(p); err == nil {
				cred.TrustHashes(h)
				continue
			}
			h, err := certverify.ParseSPKIHash(p)
			if err != nil {
				return nil, fmt.Errorf("-pin %q: neither 64 hex digits (certificate SHA-256) nor base64 of 32 bytes (SPKI SHA-256)", p)
			}
			cred.TrustSPKIs(h)
		}
		return cred, nil
	}
	roots, err := x509.SystemCertPool()
	if err != nil || roots == nil {
		return nil, fmt.Errorf("no system CA roots (%v): pass -pin HASH (printed by the server) or, for tests only, -insecure", err)
	}
	cred.Roots = roots
	return cred, nil
}

func fetch(ctx context.Context, url, out, pin string, insecure bool, logger *slog.Logger, stdout, stderr io.Writer) error {
	cred, err := clientTrust(pin, insecure)
	if err != nil {
		return err
	}
	if insecure {
		// certverify logs a warning at each skipped verification too.
		fmt.Fprintln(stderr, "h3: WARNING: -insecure: the server is not authenticated; use it only against throwaway test servers")
		cred.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	tr := &Transport{Credential: cred, Logger: logger}
	defer tr.Close()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	start := time.Now()
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	fmt.Fprintf(stdout, "%s %s\n", resp.Proto, resp.Status)
	names := make([]string, 0, len(resp.Header))
	for k := range resp.Header {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		for _, v := range resp.Header[k] {
			fmt.Fprintf(stdout, "%s: %s\n", k, v)
		}
	}
	fmt.Fprintln(stdout)
	var n int64
	if out != "" {
		f, err := os.Create(out)
		if err != nil {
			return err
		}
		if n, err = io.Copy(f, resp.Body); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "h3: wrote %d bytes to %s in %s\n", n, out, time.Since(start).Round(time.Millisecond))
		return nil
	}
	_, err = io.Copy(stdout, resp.Body)
	return err
}
