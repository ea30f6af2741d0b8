package conn

import "fmt"

// State is a connection's place in its lifecycle. States only move forward:
//
//	Open → Connecting → Connected → Shutdown → ShutdownComplete
//
// A connection may skip states: a failed handshake goes from Connecting to
// Shutdown, and one abandoned before it was started never leaves Open.
type State uint8

const (
	// Open is a connection made by New and not yet started. It holds no
	// socket and no goroutine.
	Open State = iota
	// Connecting is a connection whose handshake is under way. A server-side
	// connection from Listener.Accept starts here.
	Connecting
	// Connected is a connection whose handshake is complete.
	Connected
	// Shutdown is a connection that is closing: locally, by the peer or by
	// the transport. Its error is known.
	Shutdown
	// ShutdownComplete is a closed connection whose resources are released
	// and whose waiters have all been woken.
	ShutdownComplete
)

var stateNames = [...]string{
	Open:             "Open",
	Connecting:       "Connecting",
	Connected:        "Connected",
	Shutdown:         "Shutdown",
	ShutdownComplete: "ShutdownComplete",
}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}
