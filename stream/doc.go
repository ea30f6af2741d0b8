// Package stream is quicconn's QUIC stream API: byte streams ([Stream],
// with its halves [ReadStream] and [WriteStream]) and message streams
// ([SendStream], [MessageReader]) over quic-go's streams.
//
// The conn package hands these out (Connection.OpenOutboundStream,
// AcceptInboundStream, AcceptInboundUniStream, OpenSendStream). The
// constructors [NewStream], [NewSendOnlyStream], [NewReadStream] and
// [NewSendStream] wrap quic-go streams directly, for programs that hold raw
// quic-go streams.
//
// # Byte streams
//
// A [Stream] is an io.ReadWriteCloser. Read and Write hand the caller's
// buffer straight to quic-go: the wrapper adds no copy and no allocation.
// Close sends FIN (msquic's finish_write) and leaves the read side open;
// CancelWrite sends RESET_STREAM (abort_write) and CancelRead sends
// STOP_SENDING (abort_read), each with an application error code. ReadChunk
// returns what has arrived in a new slice, and stops waiting when its context
// ends.
//
// # Messages
//
// A message is a 4-byte big-endian length followed by that many bytes, the
// framing of the Rust Connection API over msquic that quicconn follows, so
// Go and Rust nodes exchange messages on the same stream:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                     Length (32, big-endian)                   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                     Message (Length bytes)                  ...
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                     Length of the next message              ...
//
// Messages follow each other with nothing between them, and a stream ends
// (FIN) between two messages. A zero Length is an empty message. Both sides
// bound the Length (16 MiB by default); a reader rejects a larger one with
// *errors.MessageTooLargeError before allocating anything for it.
//
// # Concurrency
//
// As in quic-go: one goroutine may read a stream while another writes it;
// CancelRead, CancelWrite and the deadline setters may be called from any
// goroutine; Close must not run concurrently with a Write. Two goroutines
// must not Read (or Write) the same stream at once. [Stream.Split] gives the
// two directions to two goroutines. [SendStream.Send] is the exception: it
// may be called concurrently and sends whole messages one at a time.
//
// # Errors
//
// Every error names its operation in an *errors.OpError ("read", "write",
// "close", "cancel read", "cancel write", "send message", "read message"),
// except io.EOF, which Read, ReadChunk and ReadMessage return bare, as
// io.Reader requires. Match them with errors.Is and errors.As (the errors
// package is quicconn's, imported here as qerr):
//
//	what happened                                 error
//	the peer finished its write side (FIN)        io.EOF, bare
//	the peer reset its write side (RESET_STREAM)  Read: *qerr.StreamError{Kind: Reset, Remote: true, Code}
//	CancelRead was called on this side            Read: *qerr.StreamError{Kind: Reset, Remote: false, Code}
//	the peer stopped reading (STOP_SENDING)       Write: *qerr.StreamError{Kind: Stopped, Remote: true, Code}
//	CancelWrite was called on this side           Write: *qerr.StreamError{Kind: Stopped, Remote: false, Code}
//	Write after Close                             qerr.ErrFinished
//	read side of an outbound unidirectional one   qerr.ErrClosed
//	the read or write deadline passed             os.ErrDeadlineExceeded (a net.Error with Timeout)
//	ReadChunk's or Send's context ended           ctx.Err()
//	the connection is gone                        qerr.ErrConnectionLost, and As *qerr.ConnectionError
//	a message longer than the bound               *qerr.MessageTooLargeError{Size, Max}
//	a stream that ends inside a message           io.ErrUnexpectedEOF
//	anything else                                 qerr.ErrInternal, with quic-go's error wrapped
//
// quic-go's own error stays reachable through Unwrap.
package stream
