package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/quicconn/quicconn/stream"
)

// The wire format, on one bidirectional stream opened by the sender:
//
//	sender → receiver   header   4-byte big-endian length, then that many bytes of
//	                             JSON {"name": "report.pdf", "size": 3145728}
//	                             (the framing of message streams, at most 4 KiB)
//	                    data     exactly size bytes
//	                    trailer  the 32-byte SHA-256 of the data
//	                    FIN
//	receiver → sender   one line, then FIN: "OK <sha256 hex>\n" once the file is
//	                    stored under its name, or "ERR <reason>\n"
//
// The receiver checks the trailer against what it hashed before it gives the
// file its name, and the sender checks the hash in the OK line against its
// own, so a file is verified end to end.

const (
	maxHeader = 4 << 10
	maxName   = 255

	// Application error codes for CancelRead, CancelWrite and Shutdown.
	codeOK       = 0
	codeRejected = 1 // the receiver refuses the file
	codeAborted  = 2 // the sender gave up (interrupted, file changed)
)

// header is the JSON header.
type header struct {
	Name string `json:"name"`
	Size int64  `json:"size"`
}

// writeHeader frames h as a message.
func writeHeader(w io.Writer, h header) error {
	js, err := json.Marshal(h)
	if err != nil {
		return err
	}
	b := binary.BigEndian.AppendUint32(nil, uint32(len(js)))
	_, err = w.Write(append(b, js...))
	return err
}

// readHeader reads and decodes the header message.
func readHeader(r io.Reader) (header, error) {
	var h header
	msg, err := stream.NewMessageReader(r, maxHeader).ReadMessage()
	if err != nil {
		return h, fmt.Errorf("reading the header: %w", err)
	}
	if err := json.Unmarshal(msg, &h); err != nil {
		return h, fmt.Errorf("bad header: %v", err)
	}
	if h.Size < 0 {
		return h, fmt.Errorf("bad header: negative size %d", h.Size)
	}
	return h, nil
}

// checkName accepts a plain file name: one path element, so that the
// receiver never writes outside its directory, whatever the platform.
func checkName(name string) error {
	switch {
	case name == "":
		return errors.New("empty name")
	case len(name) > maxName:
		return fmt.Errorf("name longer than %d bytes", maxName)
	case !utf8.ValidString(name):
		return errors.New("name is not UTF-8")
	case name == "." || name == "..":
		return fmt.Errorf("name %q is a directory reference", name)
	case strings.ContainsAny(name, `/\:`):
		return fmt.Errorf("name %q contains a path separator or a drive/stream colon", name)
	case filepath.IsAbs(name) || !filepath.IsLocal(name) || filepath.Base(name) != name:
		return fmt.Errorf("name %q is not a plain local file name", name)
	}
	for _, r := range name {
		if r == 0 || unicode.IsControl(r) {
			return fmt.Errorf("name %q contains a control character", name)
		}
	}
	return nil
}

// reply is the receiver's answer.
func writeReply(w io.Writer, sum []byte, err error) {
	if err != nil {
		fmt.Fprintf(w, "ERR %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
		return
	}
	fmt.Fprintf(w, "OK %x\n", sum)
}

// readReply reads the receiver's answer and checks it against sum.
func readReply(r io.Reader, sum []byte) error {
	line, err := bufio.NewReader(io.LimitReader(r, 1024)).ReadString('\n')
	if err != nil {
		return fmt.Errorf("no answer from the receiver: %w", err)
	}
	line = strings.TrimSuffix(line, "\n")
	switch {
	case strings.HasPrefix(line, "ERR "):
		return fmt.Errorf("the receiver refused the file: %s", strings.TrimPrefix(line, "ERR "))
	case strings.HasPrefix(line, "OK "):
		got, err := hex.DecodeString(strings.TrimPrefix(line, "OK "))
		if err != nil || len(got) != sha256.Size {
			return fmt.Errorf("garbled answer from the receiver: %q", line)
		}
		if string(got) != string(sum) {
			return fmt.Errorf("sha256 mismatch: sent %x, receiver stored %x", sum, got)
		}
		return nil
	}
	return fmt.Errorf("garbled answer from the receiver: %q", line)
}
