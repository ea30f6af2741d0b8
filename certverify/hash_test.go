package certverify

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCertHashRoundTrip(t *testing.T) {
	t.Parallel()
	h := HashOf([]byte("certificate"))
	if h != CertHash(sha256.Sum256([]byte("certificate"))) {
		t.Fatal("HashOf is not SHA-256 of the bytes")
	}
	s := h.String()
	if s != strings.ToLower(s) || len(s) != 64 {
		t.Fatalf("String() = %q, want 64 lower-case hex digits", s)
	}
	for _, in := range []string{s, strings.ToUpper(s)} {
		got, err := ParseCertHash(in)
		if err != nil {
			t.Fatalf("ParseCertHash(%q): %v", in, err)
		}
		if got != h {
			t.Errorf("ParseCertHash(%q) = %v, want %v", in, got, h)
		}
	}
}

func TestParseCertHashRejects(t *testing.T) {
	t.Parallel()
	good := HashOf(nil).String()
	tests := []struct{ name, in string }{
		{"empty", ""},
		{"63 digits", good[:63]},
		{"65 digits", good + "0"},
		{"0x prefix", "0x" + good[2:]},
		{"non-hex digit", "g" + good[1:]},
		{"surrounding space", " " + good[1:]},
		{"colon-separated", strings.Repeat("ab:", 21) + "a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if h, err := ParseCertHash(tt.in); err == nil {
				t.Errorf("ParseCertHash(%q) = %v, want an error", tt.in, h)
			}
		})
	}
}

// TestCertHashJSON checks that trust lists survive a configuration file.
func TestCertHashJSON(t *testing.T) {
	t.Parallel()
	in := []CertHash{HashOf([]byte("a")), HashOf([]byte("b"))}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	want := `["` + in[0].String() + `","` + in[1].String() + `"]`
	if string(b) != want {
		t.Errorf("json = %s, want %s", b, want)
	}
	var out []CertHash
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(in, out); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	if err := json.Unmarshal([]byte(`["abc"]`), &out); err == nil {
		t.Error("json.Unmarshal accepted a short hash")
	}
}

func TestSPKIHashOf(t *testing.T) {
	t.Parallel()
	m := mint(t, certSpec{})
	reissued := mint(t, certSpec{key: m.key, name: "renewed.test"})
	spki, err := x509.MarshalPKIXPublicKey(&m.key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	want := SPKIHash(sha256.Sum256(spki))
	for name, der := range map[string][]byte{"original": m.der, "re-issued with the same key": reissued.der} {
		got, err := SPKIHashOf(der)
		if err != nil || got != want {
			t.Errorf("%s: SPKIHashOf = %v, %v; want %v", name, got, err, want)
		}
	}
	if HashOf(m.der) == HashOf(reissued.der) {
		t.Error("the re-issued certificate has the original's CertHash")
	}
	other, err := SPKIHashOf(mint(t, certSpec{}).der)
	if err != nil || other == want {
		t.Errorf("another key: SPKIHashOf = %v, %v; want a different hash", other, err)
	}
	_, err = SPKIHashOf([]byte("not DER"))
	if diff := cmp.Diff(certErr{Reason: reasonMalformed}, asCertErr(t, err)); diff != "" {
		t.Errorf("malformed input (-want +got):\n%s", diff)
	}
}

func TestParseSPKIHash(t *testing.T) {
	t.Parallel()
	h := SPKIHash(sha256.Sum256([]byte("hello")))
	const b64 = "LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ="
	hexed := hex.EncodeToString(h[:])
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"String's form", b64, true},
		{"lower-case hex", hexed, true},
		{"upper-case hex", strings.ToUpper(hexed), true},
		{"empty", "", false},
		{"unpadded base64", strings.TrimSuffix(b64, "="), false},
		{"URL-safe base64", strings.NewReplacer("+", "-", "/", "_").Replace(b64), false},
		{"padding bits set", b64[:42] + "R=", false},
		{"sha256/ prefix", "sha256/" + b64, false},
		{"a newline for a character", b64[:20] + "\n" + b64[21:], false},
		{"surrounding space", " " + b64[1:], false},
		{"63 hex digits", hexed[:63], false},
		{"non-hex digit", "g" + hexed[1:], false},
		{"base64 of 33 bytes", base64.StdEncoding.EncodeToString(make([]byte, 33)), false},
		{"base64 of 31 bytes, padded to 44", base64.StdEncoding.EncodeToString(make([]byte, 31)) + "====", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseSPKIHash(tt.in)
			switch {
			case tt.ok && (err != nil || got != h):
				t.Errorf("ParseSPKIHash(%q) = %v, %v; want %v", tt.in, got, err, h)
			case !tt.ok && err == nil:
				t.Errorf("ParseSPKIHash(%q) = %v, want an error", tt.in, got)
			case !tt.ok && !strings.Contains(err.Error(), "SPKI hash"):
				t.Errorf("error %q does not say what failed to parse", err)
			}
		})
	}
	if got := h.String(); got != b64 {
		t.Errorf("String() = %q, want %q", got, b64)
	}
}

// TestSPKIHashJSON checks that SPKI pins survive a configuration file.
func TestSPKIHashJSON(t *testing.T) {
	t.Parallel()
	in := []SPKIHash{SPKIHash(HashOf([]byte("a"))), SPKIHash(HashOf([]byte("b")))}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	want := `["` + in[0].String() + `","` + in[1].String() + `"]`
	if string(b) != want {
		t.Errorf("json = %s, want %s", b, want)
	}
	var out []SPKIHash
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(in, out); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	if err := json.Unmarshal([]byte(`["abc"]`), &out); err == nil {
		t.Error("json.Unmarshal accepted a short hash")
	}
}

// FuzzParseSPKIHash: ParseSPKIHash never panics, and what it accepts is a
// canonical spelling of the hash it returns, so that one key has one pin
// per form.
func FuzzParseSPKIHash(f *testing.F) {
	h := SPKIHash(sha256.Sum256([]byte("hello")))
	for _, s := range []string{h.String(), hex.EncodeToString(h[:]), "", "====", h.String()[:43] + "R"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseSPKIHash(s)
		if err != nil {
			return
		}
		if got.String() != s && hex.EncodeToString(got[:]) != strings.ToLower(s) {
			t.Fatalf("ParseSPKIHash(%q) = %v, which is spelled neither %q nor %x", s, got, got.String(), got[:])
		}
	})
}
