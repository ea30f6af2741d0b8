// Package dgram holds the bounded queue that received QUIC datagrams wait in
// until the application reads them.
//
// The conn package drains quic-go's datagram receiver into one Queue per
// connection, bounded by conn.Settings.DatagramQueueLen, and serves
// Connection.ReceiveDatagram from it. A datagram is unreliable by nature, so a
// full queue never pushes back on the peer: it drops its oldest datagram and
// counts the drop, and users see the counts through conn.Stats. Applications
// do not normally use this package directly.
package dgram
