// Package dgram holds the bounded queue that received QUIC datagrams wait in
// until the application reads them.
//
// The conn package gives each connection one Queue, bounded by
// conn.Settings.DatagramQueueLen and fed by quic-go's datagram receiver
// (Queue.ReceiveFrom), and serves Connection.ReceiveDatagram from it. While
// the application waits in ReceiveDatagram, each datagram goes straight from
// quic-go to it; while the application does not keep up, the queue drains
// quic-go into itself. A datagram is unreliable by nature, so a full queue
// never pushes back on the peer: it drops its oldest datagram and counts the
// drop, and users see the counts through conn.Stats. Applications do not
// normally use this package directly.
package dgram
