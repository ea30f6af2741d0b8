package stream_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	qerr "github.com/quicconn/quicconn/errors"
	"github.com/quicconn/quicconn/stream"
)

// A MessageReader reads length-prefixed messages from any io.Reader; here a
// buffer holds what a SendStream would have sent: each message is a 4-byte
// big-endian length and then its bytes.
func ExampleNewMessageReader() {
	var buf bytes.Buffer
	for _, msg := range []string{"hello", "", "world"} {
		buf.Write(binary.BigEndian.AppendUint32(nil, uint32(len(msg))))
		buf.WriteString(msg)
	}

	r := stream.NewMessageReader(&buf, 1024)
	for {
		msg, err := r.ReadMessage()
		if err == io.EOF {
			fmt.Println("end of stream")
			break
		}
		if err != nil {
			fmt.Println("error:", err)
			break
		}
		fmt.Printf("%d bytes: %q\n", len(msg), msg)
	}
	// Output:
	// 5 bytes: "hello"
	// 0 bytes: ""
	// 5 bytes: "world"
	// end of stream
}

// A length prefix above the reader's bound is refused before anything is
// allocated for the message.
func ExampleMessageReader_ReadMessage_tooLarge() {
	prefix := binary.BigEndian.AppendUint32(nil, 1<<30) // announces 1 GiB
	r := stream.NewMessageReader(bytes.NewReader(prefix), 1<<20)

	_, err := r.ReadMessage()
	var tooLarge *qerr.MessageTooLargeError
	if errors.As(err, &tooLarge) {
		fmt.Printf("refused: %d bytes announced, %d allowed\n", tooLarge.Size, tooLarge.Max)
	}
	fmt.Println(err)
	// Output:
	// refused: 1073741824 bytes announced, 1048576 allowed
	// quicconn: read message: message of 1073741824 bytes exceeds the limit of 1048576 bytes
}

// Request and response with the library's framing on one bidirectional
// connection: each side reads messages with a MessageReader and writes them
// with a MessageWriter. A net.Pipe stands in for a Stream, which is used
// the same way.
func ExampleMessageWriter() {
	clientEnd, serverEnd := net.Pipe()
	defer clientEnd.Close()

	// The server answers each request on the connection it came on.
	go func() {
		defer serverEnd.Close()
		r, w := stream.NewMessageReader(serverEnd, 1<<10), stream.NewMessageWriter(serverEnd, 1<<10)
		for {
			req, err := r.ReadMessage()
			if err != nil {
				return // io.EOF: the client is done
			}
			if err := w.WriteMessage([]byte(strings.ToUpper(string(req)))); err != nil {
				return
			}
		}
	}()

	r, w := stream.NewMessageReader(clientEnd, 1<<10), stream.NewMessageWriter(clientEnd, 1<<10)
	for _, req := range []string{"hello", "", "mesh"} {
		if err := w.WriteMessage([]byte(req)); err != nil {
			fmt.Println("write:", err)
			return
		}
		resp, err := r.ReadMessage()
		if err != nil {
			fmt.Println("read:", err)
			return
		}
		fmt.Printf("%q -> %q\n", req, resp)
	}

	// A message above the bound is refused before anything is written.
	err := w.WriteMessage(make([]byte, 2<<10))
	fmt.Println(err)
	// Output:
	// "hello" -> "HELLO"
	// "" -> ""
	// "mesh" -> "MESH"
	// quicconn: write message: message of 2048 bytes exceeds the limit of 1024 bytes
}

func ExampleType_String() {
	fmt.Println(stream.Bidirectional, stream.Unidirectional)
	// Output: bidirectional unidirectional
}
