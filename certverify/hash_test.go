package certverify

import (
	"crypto/sha256"
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
