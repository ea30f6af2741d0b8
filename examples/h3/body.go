package main

import (
	"io"
	"net/http"

	"github.com/quic-go/qpack"
	"github.com/quicconn/quicconn/examples/h3/internal/h3wire"
	"github.com/quicconn/quicconn/stream"
)

type qpackField = qpack.HeaderField

// bodyReader reads a message's content from a request stream: the payloads
// of its DATA frames, then an optional trailer section, then the end of the
// stream. It enforces the frame grammar of RFC 9114 section 4.1 and the
// message's content-length.
type bodyReader struct {
	fr         *h3wire.FrameReader
	sess       *session
	str        *stream.Stream
	fromServer bool // the message is a response
	// contentLength is the declared length, or -1.
	contentLength int64
	n             int64
	inData        bool
	trailerSeen   bool
	trailer       http.Header
	err           error // sticky
}

func (b *bodyReader) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	for {
		if b.inData {
			if b.fr.Remaining() == 0 {
				b.inData = false
				continue
			}
			n, err := b.fr.Read(p)
			b.n += int64(n)
			if err == nil && b.contentLength >= 0 && b.n > b.contentLength {
				err = h3wire.StreamError(h3wire.MessageError, "more content than content-length %d", b.contentLength)
			}
			if err != nil {
				return n, b.fail(err)
			}
			return n, nil
		}
		ft, n, err := b.fr.Next()
		if err == io.EOF {
			if b.contentLength >= 0 && b.n != b.contentLength {
				return 0, b.fail(h3wire.StreamError(h3wire.MessageError, "content of %d bytes, content-length %d", b.n, b.contentLength))
			}
			b.err = io.EOF
			return 0, io.EOF
		}
		if err != nil {
			return 0, b.fail(err)
		}
		switch ft {
		case h3wire.FrameData:
			if b.trailerSeen {
				return 0, b.fail(h3wire.ConnError(h3wire.FrameUnexpected, "DATA after trailers"))
			}
			b.inData = true
		case h3wire.FrameHeaders:
			if b.trailerSeen {
				return 0, b.fail(h3wire.ConnError(h3wire.FrameUnexpected, "second trailer section"))
			}
			b.trailerSeen = true
			fields, err := readHeaderBlock(b.fr, n)
			if err != nil {
				return 0, b.fail(err)
			}
			if b.trailer, err = h3wire.TrailerFromFields(fields); err != nil {
				return 0, b.fail(err)
			}
		default:
			if err := frameOnRequestStream(ft, b.fromServer); err != nil {
				return 0, b.fail(err)
			}
		}
	}
}

// fail records err and applies it to the stream or connection.
func (b *bodyReader) fail(err error) error {
	b.err = err
	b.sess.handleError(b.str, err)
	return err
}
