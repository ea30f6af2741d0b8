package stream

import "strconv"

// Type is the kind of a QUIC stream: bidirectional (both peers send) or
// unidirectional (only the opener sends). The values match msquic's stream
// open flags of the msquic-based Rust Connection API: 0 is bidirectional, 1 unidirectional.
type Type uint8

const (
	// Bidirectional streams carry data both ways. It is the zero Type.
	Bidirectional Type = iota
	// Unidirectional streams carry data from the opener to the peer only.
	Unidirectional
)

// String returns "bidirectional" or "unidirectional", or "Type(n)" for a
// value that is neither.
func (t Type) String() string {
	switch t {
	case Bidirectional:
		return "bidirectional"
	case Unidirectional:
		return "unidirectional"
	}
	return "Type(" + strconv.Itoa(int(t)) + ")"
}

// typeOf derives a stream's Type from its ID: in QUIC, bit 0x2 of the ID is
// set for unidirectional streams (RFC 9000, section 2.1).
func typeOf(id int64) Type {
	if id&0x2 != 0 {
		return Unidirectional
	}
	return Bidirectional
}
