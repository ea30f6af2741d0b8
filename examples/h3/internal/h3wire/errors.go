package h3wire

import "fmt"

// Code is an HTTP/3 application error code (RFC 9114, section 8.1), sent in
// CONNECTION_CLOSE, RESET_STREAM and STOP_SENDING.
type Code uint64

// The HTTP/3 error codes.
const (
	NoError              Code = 0x100
	GeneralProtocolError Code = 0x101
	InternalError        Code = 0x102
	StreamCreationError  Code = 0x103
	ClosedCriticalStream Code = 0x104
	FrameUnexpected      Code = 0x105
	FrameError           Code = 0x106
	ExcessiveLoad        Code = 0x107
	IDError              Code = 0x108
	SettingsError        Code = 0x109
	MissingSettings      Code = 0x10a
	RequestRejected      Code = 0x10b
	RequestCancelled     Code = 0x10c
	RequestIncomplete    Code = 0x10d
	MessageError         Code = 0x10e
	ConnectError         Code = 0x10f
	VersionFallback      Code = 0x110

	// QPACKDecompressionFailed is RFC 9204's code for a header block that
	// cannot be decoded.
	QPACKDecompressionFailed Code = 0x200
)

var codeNames = map[Code]string{
	NoError:                  "H3_NO_ERROR",
	GeneralProtocolError:     "H3_GENERAL_PROTOCOL_ERROR",
	InternalError:            "H3_INTERNAL_ERROR",
	StreamCreationError:      "H3_STREAM_CREATION_ERROR",
	ClosedCriticalStream:     "H3_CLOSED_CRITICAL_STREAM",
	FrameUnexpected:          "H3_FRAME_UNEXPECTED",
	FrameError:               "H3_FRAME_ERROR",
	ExcessiveLoad:            "H3_EXCESSIVE_LOAD",
	IDError:                  "H3_ID_ERROR",
	SettingsError:            "H3_SETTINGS_ERROR",
	MissingSettings:          "H3_MISSING_SETTINGS",
	RequestRejected:          "H3_REQUEST_REJECTED",
	RequestCancelled:         "H3_REQUEST_CANCELLED",
	RequestIncomplete:        "H3_REQUEST_INCOMPLETE",
	MessageError:             "H3_MESSAGE_ERROR",
	ConnectError:             "H3_CONNECT_ERROR",
	VersionFallback:          "H3_VERSION_FALLBACK",
	QPACKDecompressionFailed: "QPACK_DECOMPRESSION_FAILED",
}

// String returns the code's RFC 9114 name, or its hex value for others
// (reserved "grease" codes among them).
func (c Code) String() string {
	if n, ok := codeNames[c]; ok {
		return n
	}
	return fmt.Sprintf("H3 error 0x%x", uint64(c))
}

// Error is an HTTP/3 protocol violation. Conn says whether RFC 9114 makes it
// a connection error (close the connection with Code) or a stream error
// (reset the stream with Code).
type Error struct {
	Code   Code
	Conn   bool
	Reason string
}

func (e *Error) Error() string {
	kind := "stream"
	if e.Conn {
		kind = "connection"
	}
	return fmt.Sprintf("h3 %s error %s: %s", kind, e.Code, e.Reason)
}

// ConnError returns a connection error.
func ConnError(c Code, format string, args ...any) *Error {
	return &Error{Code: c, Conn: true, Reason: fmt.Sprintf(format, args...)}
}

// StreamError returns a stream error.
func StreamError(c Code, format string, args ...any) *Error {
	return &Error{Code: c, Reason: fmt.Sprintf(format, args...)}
}
