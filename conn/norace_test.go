//go:build !race

package conn_test

// raceEnabled reports whether the race detector is on: it adds allocations
// of its own on some paths, so process-wide allocation counts are not
// compared under it.
const raceEnabled = false
