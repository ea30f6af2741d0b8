// Package h3wire is the HTTP/3 wire format (RFC 9114) that the h3 example
// needs, with no dependency on a QUIC implementation: variable-length
// integers, frame headers, unidirectional stream types, SETTINGS, the error
// codes, and QPACK header blocks restricted to the static table and literals
// (the example advertises a dynamic table capacity of 0, so a conforming peer
// never references one).
//
// Reading is defensive: every length read from the wire is bounded before
// anything is allocated for it, and each violation is an *Error carrying the
// HTTP/3 error code that RFC 9114 assigns to it and whether it is a
// connection error or a stream error.
package h3wire
