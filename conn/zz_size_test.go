package conn

import (
	"testing"
	"unsafe"
)

func TestZZSize(t *testing.T) {
	t.Logf("Connection %d lifetime %d options %d", unsafe.Sizeof(Connection{}), unsafe.Sizeof(lifetime{}), unsafe.Sizeof(options{}))
}
