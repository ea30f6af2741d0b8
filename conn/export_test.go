package conn

import "github.com/quic-go/quic-go"

// QUICConfigForTest is the quic.Config that connections with settings s
// run on, so that tests and benchmarks in conn_test can run raw quic-go with
// exactly the same configuration.
func QUICConfigForTest(s Settings) *quic.Config { return s.quicConfig(&options{}) }
