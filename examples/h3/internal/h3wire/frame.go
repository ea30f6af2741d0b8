package h3wire

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// FrameType is an HTTP/3 frame type (RFC 9114, section 7.2).
type FrameType uint64

// The frame types of RFC 9114. The types HTTP/2 used and HTTP/3 reserves
// (0x02, 0x06, 0x08, 0x09) are recognised by IsHTTP2Reserved.
const (
	FrameData        FrameType = 0x00
	FrameHeaders     FrameType = 0x01
	FrameCancelPush  FrameType = 0x03
	FrameSettings    FrameType = 0x04
	FramePushPromise FrameType = 0x05
	FrameGoAway      FrameType = 0x07
	FrameMaxPushID   FrameType = 0x0d
)

// IsHTTP2Reserved reports whether t is an HTTP/2 frame type that HTTP/3
// forbids: receiving one is a connection error of type H3_FRAME_UNEXPECTED.
func (t FrameType) IsHTTP2Reserved() bool {
	return t == 0x02 || t == 0x06 || t == 0x08 || t == 0x09
}

// IsGrease reports whether t is one of the reserved types 0x1f*N+0x21 that
// exercise the rule that unknown types are ignored.
func IsGrease(t uint64) bool { return t >= 0x21 && (t-0x21)%0x1f == 0 }

// StreamType is the type that opens an HTTP/3 unidirectional stream
// (RFC 9114, section 6.2; RFC 9204, section 4.2).
type StreamType uint64

// The unidirectional stream types this package knows.
const (
	StreamControl      StreamType = 0x00
	StreamPush         StreamType = 0x01
	StreamQPACKEncoder StreamType = 0x02
	StreamQPACKDecoder StreamType = 0x03
)

// AppendFrameHeader appends a frame's type and payload length.
func AppendFrameHeader(b []byte, t FrameType, length uint64) []byte {
	return AppendVarint(AppendVarint(b, uint64(t)), length)
}

// AppendFrame appends a whole frame.
func AppendFrame(b []byte, t FrameType, payload []byte) []byte {
	return append(AppendFrameHeader(b, t, uint64(len(payload))), payload...)
}

// AppendGoAway appends a GOAWAY frame carrying id: a stream ID from a server,
// a push ID from a client.
func AppendGoAway(b []byte, id uint64) []byte {
	return AppendFrame(b, FrameGoAway, AppendVarint(nil, id))
}

// A FrameReader reads frames from one HTTP/3 stream. Its methods distinguish
// a stream that ends between frames (io.EOF) from one that ends inside a
// frame (a connection error H3_FRAME_ERROR, RFC 9114 section 7.1).
type FrameReader struct {
	r *bufio.Reader
	// remaining is the unread payload of the current frame.
	remaining uint64
}

// NewFrameReader returns a FrameReader over r, which it buffers.
func NewFrameReader(r io.Reader) *FrameReader {
	return &FrameReader{r: bufio.NewReaderSize(r, 16<<10)}
}

// Next skips what is left of the current frame and reads the next frame's
// header. It returns io.EOF when the stream ends cleanly before a frame.
func (f *FrameReader) Next() (FrameType, uint64, error) {
	if err := f.Skip(); err != nil {
		return 0, 0, err
	}
	t, err := ReadVarint(f.r)
	if err != nil {
		return 0, 0, truncated(err, true)
	}
	n, err := ReadVarint(f.r)
	if err != nil {
		return 0, 0, truncated(err, false)
	}
	f.remaining = n
	return FrameType(t), n, nil
}

// Remaining returns how much of the current frame's payload is unread.
func (f *FrameReader) Remaining() uint64 { return f.remaining }

// Read reads payload bytes of the current frame, returning io.EOF at its
// end. It lets a DATA frame's payload go straight to the caller.
func (f *FrameReader) Read(p []byte) (int, error) {
	if f.remaining == 0 {
		return 0, io.EOF
	}
	if uint64(len(p)) > f.remaining {
		p = p[:f.remaining]
	}
	n, err := f.r.Read(p)
	f.remaining -= uint64(n)
	if err != nil && f.remaining > 0 {
		return n, truncated(err, false)
	}
	return n, nil
}

// Payload reads the whole payload of the current frame, which must be at
// most limit bytes; a longer one is reported as tooLong.
func (f *FrameReader) Payload(limit uint64, tooLong *Error) ([]byte, error) {
	if f.remaining > limit {
		return nil, tooLong
	}
	b := make([]byte, f.remaining)
	if _, err := io.ReadFull(f.r, b); err != nil {
		return nil, truncated(err, false)
	}
	f.remaining = 0
	return b, nil
}

// Skip discards what is left of the current frame's payload, without
// buffering it: unknown frames may be of any length.
func (f *FrameReader) Skip() error {
	for f.remaining > 0 {
		n := f.remaining
		if n > 1<<30 {
			n = 1 << 30
		}
		d, err := f.r.Discard(int(n))
		f.remaining -= uint64(d)
		if err != nil {
			return truncated(err, false)
		}
	}
	return nil
}

// truncated maps the end of a stream inside a frame to H3_FRAME_ERROR; clean
// (at a frame boundary) ends and other errors pass through.
func truncated(err error, atBoundary bool) error {
	if atBoundary && err == io.EOF {
		return io.EOF
	}
	if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
		return ConnError(FrameError, "stream ended inside a frame")
	}
	return err
}

// ReadStreamType reads the type that starts a unidirectional stream.
func ReadStreamType(r io.ByteReader) (StreamType, error) {
	t, err := ReadVarint(r)
	if err != nil {
		return 0, fmt.Errorf("reading stream type: %w", err)
	}
	return StreamType(t), nil
}

// ReadVarint reads a variable-length integer outside any frame: the type at
// the start of a unidirectional stream.
func (f *FrameReader) ReadVarint() (uint64, error) { return ReadVarint(f.r) }
