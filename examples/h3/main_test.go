package main

import (
	"bytes"

	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDirHandlerStaysInside: -dir serves files under the directory and
// nothing outside it, whatever the path or symbolic links say.
func TestDirHandlerStaysInside(t *testing.T) {
	top := t.TempDir()
	dir := filepath.Join(top, "www")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(top, "secret.txt"), []byte("secret"), 0o644))
	must(os.WriteFile(filepath.Join(dir, "index.html"), []byte("<p>index</p>"), 0o644))
	must(os.WriteFile(filepath.Join(dir, "a.txt"), []byte("file a"), 0o644))
	must(os.Symlink(filepath.Join(top, "secret.txt"), filepath.Join(dir, "link.txt")))
	h, err := dirHandler(dir)
	must(err)
	cases := []struct {
		path   string
		status int
		body   string
	}{
		{"/a.txt", 200, "file a"},
		{"/", 200, "<p>index</p>"},
		{"/../secret.txt", 0, ""},
		{"/%2e%2e/secret.txt", 0, ""},
		{"/link.txt", 0, ""},
		{"/missing", 404, ""},
	}
	for _, tc := range cases {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "https://127.0.0.1"+tc.path, nil)
		h.ServeHTTP(rec, req)
		body := rec.Body.String()
		if strings.Contains(body, "secret") && !strings.Contains(body, "index") {
			t.Errorf("%s: leaked a file outside the directory: %d %q", tc.path, rec.Code, body)
		}
		if tc.status != 0 && (rec.Code != tc.status || (tc.body != "" && body != tc.body)) {
			t.Errorf("%s: got %d %q, want %d %q", tc.path, rec.Code, body, tc.status, tc.body)
		}
		if tc.status == 0 && rec.Code == http.StatusOK {
			t.Errorf("%s: served (%q), want a refusal", tc.path, body)
		}
	}
}

// TestClientTrust: the client's trust options. No option means system
// roots (a self-signed server is refused); -pin takes either hash form;
// a wrong pin is refused.
func TestClientTrust(t *testing.T) {
	checkLeaks(t)
	srv := startOurServer(t, builtinPage{})
	wrongSPKI := "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
	cases := []struct {
		name    string
		args    []string
		wantErr string // "" for success
	}{
		{"pinned by SPKI hash", []string{"-pin", srv.spki}, ""},
		{"pinned by certificate hash", []string{"-pin", srv.cred.Identity()}, ""},
		{"insecure", []string{"-insecure"}, ""},
		{"default: system roots refuse a self-signed server", nil, "bad certificate"},
		{"wrong SPKI pin", []string{"-pin", wrongSPKI}, "SPKI hash not trusted"},
		{"wrong certificate pin", []string{"-pin", strings.Repeat("ab", 32)}, "bad certificate"},
		{"malformed pin", []string{"-pin", "xyz"}, "neither 64 hex digits"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(append([]string{"-get", srv.url("/")}, tc.args...), &stdout, &stderr)
			if tc.wantErr == "" {
				if code != 0 || !strings.Contains(stdout.String(), "This page came over HTTP/3") {
					t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
				}
				return
			}
			if code == 0 || !strings.Contains(stderr.String(), tc.wantErr) {
				t.Fatalf("exit %d, want failure mentioning %q\nstderr:\n%s", code, tc.wantErr, stderr.String())
			}
			if strings.Contains(stderr.String(), "h3: h3:") {
				t.Errorf("doubled prefix in %q", stderr.String())
			}
		})
	}
}
