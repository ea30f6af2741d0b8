// Package reliability holds quicconn's reliability and security suite. It
// has no exported API: everything is in its tests.
//
// The suite proves, over conntest's impaired in-memory links and real
// loopback UDP, that:
//
//   - data sent on streams arrives complete and unaltered (SHA-256 per
//     stream) through loss, delay, reordering, duplication, a 1200-byte MTU
//     and a bandwidth cap, and datagrams arrive at most once and uncorrupted;
//   - partitions longer than the idle timeout end both sides with
//     IdleTimeout and wake every blocked call, and shorter ones lose nothing;
//   - connection churn and hostile UDP traffic leave no goroutine, file
//     descriptor or unbounded heap behind;
//   - hostile or broken peers (huge or truncated messages, datagram floods,
//     stream hoarding, stalled handshakes, resets at every point of a
//     transfer) are bounded and reported with the documented errors;
//   - an untrusted certificate never yields a Connected connection or
//     application data on the rejecting side, and no key material is logged;
//   - NewConfiguration never panics and reports bad values as ConfigErrors;
//   - every blocking call returns promptly, with the documented error, when
//     its context ends or its connection or registration shuts down.
//
// The default run fits CI (a few minutes with -race); `go test
// ./reliability/ -soak` runs the full-size variants.
package reliability
