package certverify

import (
	"bytes"
	"crypto/ed25519"
	"encoding/asn1"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestPubKeysFromCert checks that endorsing keys come back in extension
// order, verified, and that certificates without endorsements have none.
func TestPubKeysFromCert(t *testing.T) {
	t.Parallel()
	k1, k2, k3 := endorser(1), endorser(2), endorser(3)
	tests := []struct {
		name      string
		endorsers []ed25519.PrivateKey
		want      []ed25519.PublicKey
	}{
		{"no endorsers, no extension", nil, nil},
		{"one endorser", []ed25519.PrivateKey{k1}, []ed25519.PublicKey{pub(k1)}},
		// Two entries make the SEQUENCE 196 bytes: the long length form.
		{"two endorsers, long-form length", []ed25519.PrivateKey{k2, k1}, []ed25519.PublicKey{pub(k2), pub(k1)}},
		{"three endorsers", []ed25519.PrivateKey{k1, k2, k3}, []ed25519.PublicKey{pub(k1), pub(k2), pub(k3)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := generate(t, []string{"node.test"}, tt.endorsers...)
			got, err := PubKeysFromCert(c.Certificate.Certificate[0])
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("PubKeysFromCert (-want +got):\n%s", diff)
			}
			mine, err := c.MyCertPubKeys()
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, mine); diff != "" {
				t.Errorf("MyCertPubKeys (-want +got):\n%s", diff)
			}
		})
	}
}

// TestPubKeysFromCertRejects checks that a certificate whose endorsements
// cannot all be read and verified yields no keys at all.
func TestPubKeysFromCertRejects(t *testing.T) {
	t.Parallel()
	k1 := endorser(1)
	bad := mint(t, certSpec{endorsers: []ed25519.PrivateKey{endorser(2), k1}, badEndorsement: true})
	trunc := mint(t, certSpec{extValue: truncatedExt(t, k1)})
	tests := []struct {
		name     string
		der      []byte
		want     certErr
		zeroHash bool
	}{
		{name: "garbage", der: []byte{0x30, 0x03, 0x02, 0x01}, want: certErr{Reason: "malformed certificate"}},
		{name: "tampered signature", der: bad.der, want: certErr{Reason: "endorsement signature invalid", Hash: HashOf(bad.der)}},
		{name: "truncated extension", der: trunc.der, want: certErr{Reason: "endorsement extension malformed", Hash: HashOf(trunc.der)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			keys, err := PubKeysFromCert(tt.der)
			if keys != nil {
				t.Errorf("got keys %x with the error", keys)
			}
			if diff := cmp.Diff(tt.want, asCertErr(t, err)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestParseEndorsements pins the exact byte layout: the accepted encodings
// and each way an encoding can be wrong.
func TestParseEndorsements(t *testing.T) {
	t.Parallel()
	entry := func(b byte) []byte { return bytes.Repeat([]byte{b}, entryLen) }
	tlv := func(b byte) []byte { return append([]byte{0x04, 0x60}, entry(b)...) }
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

	tests := []struct {
		name  string
		value []byte
		want  [][]byte // nil with ok=false
		ok    bool
	}{
		{"empty SEQUENCE", []byte{0x30, 0x00}, [][]byte{}, true},
		{"one entry, short length", cat([]byte{0x30, 0x62}, tlv(1)), [][]byte{entry(1)}, true},
		{"two entries, 0x81 length", cat([]byte{0x30, 0x81, 0xc4}, tlv(1), tlv(2)), [][]byte{entry(1), entry(2)}, true},
		{"empty value", nil, nil, false},
		{"only the tag", []byte{0x30}, nil, false},
		{"SET, not SEQUENCE", cat([]byte{0x31, 0x62}, tlv(1)), nil, false},
		{"indefinite length", cat([]byte{0x30, 0x80}, tlv(1), []byte{0, 0}), nil, false},
		{"non-minimal 0x81 length", cat([]byte{0x30, 0x81, 0x62}, tlv(1)), nil, false},
		{"non-minimal 0x82 length", cat([]byte{0x30, 0x82, 0x00, 0xc4}, tlv(1), tlv(2)), nil, false},
		{"truncated length", []byte{0x30, 0x82, 0x01}, nil, false},
		{"huge length", []byte{0x30, 0x84, 0xff, 0xff, 0xff, 0xff}, nil, false},
		{"SEQUENCE longer than the value", cat([]byte{0x30, 0x62}, tlv(1)[:97]), nil, false},
		{"trailing bytes after the SEQUENCE", cat([]byte{0x30, 0x62}, tlv(1), []byte{0}), nil, false},
		{"entry of 95 bytes", cat([]byte{0x30, 0x61, 0x04, 0x5f}, entry(1)[:95]), nil, false},
		{"entry of 97 bytes", cat([]byte{0x30, 0x63, 0x04, 0x61}, entry(1), []byte{0}), nil, false},
		{"entry that is not an OCTET STRING", cat([]byte{0x30, 0x62, 0x03, 0x60}, entry(1)), nil, false},
		{"entry with a long-form length", cat([]byte{0x30, 0x63, 0x04, 0x81, 0x60}, entry(1)), nil, false},
		{"junk after a full entry inside the SEQUENCE", cat([]byte{0x30, 0x64}, tlv(1), []byte{0x04, 0x00}), nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseEndorsements(tt.value)
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok=%v", err, tt.ok)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestEncodeEndorsementsLayout checks that what GenerateSelfSigned writes is
// byte for byte the documented layout, and that encoding/asn1 — an
// independent DER reader — agrees with ours.
func TestEncodeEndorsementsLayout(t *testing.T) {
	t.Parallel()
	spki := []byte("subject public key info")
	k1, k2 := endorser(1), endorser(2)
	ext, err := endorse(spki, []ed25519.PrivateKey{k1, k2})
	if err != nil {
		t.Fatal(err)
	}
	if ext.Critical || !ext.Id.Equal(asn1.ObjectIdentifier{1, 2, 3, 4, 5, 6}) {
		t.Errorf("extension %v critical=%v, want 1.2.3.4.5.6 non-critical", ext.Id, ext.Critical)
	}
	want := []byte{0x30, 0x81, 0xc4, 0x04, 0x60}
	want = append(want, pub(k1)...)
	want = append(want, ed25519.Sign(k1, spki)...)
	want = append(want, 0x04, 0x60)
	want = append(want, pub(k2)...)
	want = append(want, ed25519.Sign(k2, spki)...)
	if !bytes.Equal(ext.Value, want) {
		t.Errorf("extension value\n got %x\nwant %x", ext.Value, want)
	}
	var viaASN1 [][]byte
	if rest, err := asn1.Unmarshal(ext.Value, &viaASN1); err != nil || len(rest) != 0 {
		t.Fatalf("encoding/asn1: err %v, %d bytes left", err, len(rest))
	}
	ours, err := parseEndorsements(ext.Value)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(viaASN1, ours); diff != "" {
		t.Errorf("encoding/asn1 and parseEndorsements disagree (-asn1 +ours):\n%s", diff)
	}
}

// TestEndorseRejectsBadKey checks that a wrong-sized endorser key is an
// error: ed25519.Sign would panic on it.
func TestEndorseRejectsBadKey(t *testing.T) {
	t.Parallel()
	if _, err := GenerateSelfSigned([]string{"node.test"}, []ed25519.PrivateKey{endorser(1), make([]byte, 10)}); err == nil {
		t.Fatal("GenerateSelfSigned accepted a 10-byte ed25519 key")
	}
}
