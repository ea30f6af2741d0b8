package h3wire

import (
	"errors"
	"io"
)

// MaxVarint is the largest value a QUIC variable-length integer holds.
const MaxVarint = 1<<62 - 1

// errVarintTooLarge is a programming error: a value above MaxVarint.
var errVarintTooLarge = errors.New("h3wire: value exceeds 2^62-1")

// VarintLen returns the number of bytes AppendVarint uses for v.
func VarintLen(v uint64) int {
	switch {
	case v <= 63:
		return 1
	case v <= 16383:
		return 2
	case v <= 1073741823:
		return 4
	default:
		return 8
	}
}

// AppendVarint appends v in the shortest QUIC variable-length encoding
// (RFC 9000, section 16). It panics on a value above MaxVarint, which no
// caller in this package produces from untrusted input.
func AppendVarint(b []byte, v uint64) []byte {
	switch VarintLen(v) {
	case 1:
		return append(b, byte(v))
	case 2:
		return append(b, byte(v>>8)|0x40, byte(v))
	case 4:
		return append(b, byte(v>>24)|0x80, byte(v>>16), byte(v>>8), byte(v))
	}
	if v > MaxVarint {
		panic(errVarintTooLarge)
	}
	return append(b, byte(v>>56)|0xc0, byte(v>>48), byte(v>>40), byte(v>>32),
		byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

// ReadVarint reads one variable-length integer. It returns io.EOF only when
// r ends before the first byte, and io.ErrUnexpectedEOF when it ends inside
// the integer.
func ReadVarint(r io.ByteReader) (uint64, error) {
	first, err := r.ReadByte()
	if err != nil {
		return 0, err
	}
	n := 1 << (first >> 6)
	v := uint64(first & 0x3f)
	for i := 1; i < n; i++ {
		b, err := r.ReadByte()
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return 0, err
		}
		v = v<<8 | uint64(b)
	}
	return v, nil
}

// ConsumeVarint decodes a variable-length integer at the start of b and
// returns it with the number of bytes it took, or n == 0 when b is too short.
func ConsumeVarint(b []byte) (v uint64, n int) {
	if len(b) == 0 {
		return 0, 0
	}
	n = 1 << (b[0] >> 6)
	if len(b) < n {
		return 0, 0
	}
	v = uint64(b[0] & 0x3f)
	for i := 1; i < n; i++ {
		v = v<<8 | uint64(b[i])
	}
	return v, n
}
