package conn

import (
	"time"

	"github.com/quic-go/quic-go"
)

// Stats is a snapshot of a connection's counters. Transport figures come from
// quic-go; stream and datagram figures are counted by this package.
type Stats struct {
	// SmoothedRTT and MinRTT are the round-trip time estimates of RFC 9002.
	SmoothedRTT, MinRTT time.Duration
	// BytesSent and BytesReceived count QUIC packet bytes, retransmissions
	// included, UDP and IP headers excluded.
	BytesSent, BytesReceived uint64
	// PacketsSent, PacketsReceived and PacketsLost count QUIC packets.
	PacketsSent, PacketsReceived, PacketsLost uint64
	// StreamsOpened and StreamsAccepted count streams opened by this side
	// and accepted from the peer.
	StreamsOpened, StreamsAccepted uint64
	// DatagramsSent counts datagrams handed to quic-go by SendDatagram.
	DatagramsSent uint64
	// DatagramsReceived counts datagrams received from the peer, and
	// DatagramsDropped those of them evicted from the full receive queue
	// before ReceiveDatagram took them. DatagramsQueued is how many wait in
	// the queue now.
	DatagramsReceived, DatagramsDropped, DatagramsQueued uint64
	// PathsValidated counts the new paths that Migrate probed and the
	// server validated, and Migrations the switches to one of them.
	PathsValidated, Migrations uint64
}

// Stats returns the connection's counters. After shutdown it keeps returning
// the final figures.
func (c *Connection) Stats() Stats {
	c.mu.Lock()
	qc, q := c.qc, c.dgrams
	paths, migrations := c.pathsValidated, c.migrations
	c.mu.Unlock()
	// A closed quic.Conn keeps its final figures.
	var final quic.ConnectionStats
	if qc != nil {
		final = qc.ConnectionStats()
	}
	s := Stats{
		SmoothedRTT:     final.SmoothedRTT,
		MinRTT:          final.MinRTT,
		BytesSent:       final.BytesSent,
		BytesReceived:   final.BytesReceived,
		PacketsSent:     final.PacketsSent,
		PacketsReceived: final.PacketsReceived,
		PacketsLost:     final.PacketsLost,
		StreamsOpened:   c.streamsOpened.Load(),
		StreamsAccepted: c.streamsAccepted.Load(),
		DatagramsSent:   c.datagramsSent.Load(),
		PathsValidated:  paths,
		Migrations:      migrations,
	}
	if q != nil {
		ds := q.Stats()
		s.DatagramsReceived, s.DatagramsDropped, s.DatagramsQueued = ds.Received, ds.Dropped, ds.Queued
	}
	return s
}
