package conntest_test

import (
	"testing"

	"github.com/quicconn/quicconn/certverify"
	"github.com/quicconn/quicconn/conntest"
)

// The signatures DESIGN.md fixes for the network, checked at compile time:
// this file stops compiling when one drifts.
var (
	_ func(conntest.Link) *conntest.Network                                           = conntest.NewNetwork
	_ func(*conntest.Network, string) (*conntest.PacketConn, error)                   = (*conntest.Network).ListenPacket
	_ func(*conntest.Network, string, string, conntest.Link)                          = (*conntest.Network).SetLink
	_ func(*conntest.Network, ...[]string)                                            = (*conntest.Network).Partition
	_ func(*conntest.Network)                                                         = (*conntest.Network).Heal
	_ func(*conntest.PacketConn, string) error                                        = (*conntest.PacketConn).Rebind
	_ func(client, server *certverify.Credential) conntest.PairOption                 = conntest.WithCredentials
	_ func(testing.TB, *conntest.Network, int, ...conntest.PairOption) *conntest.Mesh = conntest.NewMesh
)
