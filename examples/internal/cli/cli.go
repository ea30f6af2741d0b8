// Package cli holds what the example programs share: the trust flags
// (-trust, -cert, -key, -gen-cert), quiet-by-default logging, and the
// translation of quicconn errors into one line a user can act on.
//
// It is internal to the examples; programs that use quicconn are meant to
// copy what they need from it.
package cli

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"strings"

	"github.com/quicconn/quicconn/certverify"
	qerr "github.com/quicconn/quicconn/errors"
)

// Exit codes of the example programs.
const (
	ExitOK      = 0 // success
	ExitFailure = 1 // the run failed: network, certificate, transfer
	ExitUsage   = 2 // bad flags or arguments
)

// HashList is a repeatable flag of certificate hashes (64 hex digits each,
// the form Credential.Identity prints). A comma-separated list also works.
type HashList []certverify.CertHash

// String returns the hashes separated by commas.
func (l *HashList) String() string {
	s := make([]string, len(*l))
	for i, h := range *l {
		s[i] = h.String()
	}
	return strings.Join(s, ",")
}

// Set parses one -trust value.
func (l *HashList) Set(v string) error {
	for _, part := range strings.Split(v, ",") {
		h, err := certverify.ParseCertHash(strings.TrimSpace(part))
		if err != nil {
			return fmt.Errorf("%q is not a certificate hash (64 hex digits, as printed by the peer as its identity)", part)
		}
		*l = append(*l, h)
	}
	return nil
}

// Identity holds the flags that say who this program is and whom it trusts.
type Identity struct {
	Trust   HashList
	Cert    string
	Key     string
	GenCert string
}

// Register adds -trust, -cert, -key and -gen-cert to fs.
func (id *Identity) Register(fs *flag.FlagSet) {
	fs.Var(&id.Trust, "trust", "trust the peer whose certificate has this SHA-256 `HASH` (repeatable; required)")
	fs.StringVar(&id.Cert, "cert", "", "load this program's certificate from this PEM `FILE` (with -key); default: a fresh self-signed one")
	fs.StringVar(&id.Key, "key", "", "load the private key from this PEM `FILE` (with -cert)")
	fs.StringVar(&id.GenCert, "gen-cert", "", "write a new self-signed key pair to `PREFIX`-cert.pem and PREFIX-key.pem, print its hash and exit")
}

// Check reports flag combinations that cannot work, as a usage error.
func (id *Identity) Check() error {
	if (id.Cert == "") != (id.Key == "") {
		return errors.New("-cert and -key go together")
	}
	return nil
}

// Credential loads -cert/-key or generates a fresh self-signed certificate
// for subject, and pins the -trust hashes. It never returns a credential
// that trusts everyone: with no -trust hash it fails.
func (id *Identity) Credential(subject string) (*certverify.Credential, error) {
	if len(id.Trust) == 0 {
		return nil, Usagef("no -trust hash given: pass the peer's identity, the hash it prints (see -help)")
	}
	var cred *certverify.Credential
	var err error
	if id.Cert != "" {
		cred, err = certverify.LoadKeyPair(id.Cert, id.Key)
		if err != nil {
			return nil, fmt.Errorf("loading -cert %s / -key %s: %v", id.Cert, id.Key, err)
		}
	} else {
		cred, err = certverify.GenerateSelfSigned([]string{subject}, nil)
		if err != nil {
			return nil, err
		}
	}
	cred.TrustHashes(id.Trust...)
	return cred, nil
}

// WriteKeyPair generates a self-signed certificate for subject and writes it
// to prefix-cert.pem and its key to prefix-key.pem (mode 0600), refusing to
// overwrite either. It returns the certificate's identity.
func WriteKeyPair(prefix, subject string) (certFile, keyFile, identity string, err error) {
	cred, err := certverify.GenerateSelfSigned([]string{subject}, nil)
	if err != nil {
		return "", "", "", err
	}
	der, err := x509.MarshalPKCS8PrivateKey(cred.Certificate.PrivateKey)
	if err != nil {
		return "", "", "", err
	}
	certFile, keyFile = prefix+"-cert.pem", prefix+"-key.pem"
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cred.Certificate.Certificate[0]})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	if err := writeNew(keyFile, keyPEM, 0o600); err != nil {
		return "", "", "", err
	}
	if err := writeNew(certFile, certPEM, 0o644); err != nil {
		os.Remove(keyFile)
		return "", "", "", err
	}
	return certFile, keyFile, cred.Identity(), nil
}

func writeNew(name string, b []byte, mode os.FileMode) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(name)
		return err
	}
	return f.Close()
}

// Logger returns the logger handed to quicconn: debug records on stderr with
// -v, nothing otherwise. Without -v it also silences the standard logger,
// which quic-go uses for its one-off UDP buffer size warning, so that a
// failing run prints exactly one line.
func Logger(verbose bool) *slog.Logger {
	if !verbose {
		log.SetOutput(io.Discard)
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// TLS alerts arrive as QUIC transport codes 0x100 + alert.
const (
	codeBadCertificate      = 0x100 + 42  // bad_certificate
	codeCertificateRequired = 0x100 + 116 // certificate_required
)

// Explain turns the error of a connection step into one line that says what
// went wrong and what to do. addr is the peer's address and self this
// program's identity, both for the message.
func Explain(err error, addr, self string) string {
	var certErr *qerr.CertificateError
	var connErr *qerr.ConnectionError
	var cfgErr *qerr.ConfigError
	switch {
	case errors.As(err, &certErr) && certErr.Remote:
		if self == "" {
			return fmt.Sprintf("the peer at %s rejected this program's certificate: %s", addr, certErr.Reason)
		}
		return fmt.Sprintf("the peer at %s rejected this program's certificate (identity %s): start the peer with -trust %s, and use -cert/-key here so the identity stays the same", addr, self, self)
	case errors.As(err, &certErr):
		hash := certverify.CertHash(certErr.Hash)
		if certErr.Hash == ([32]byte{}) {
			return fmt.Sprintf("peer certificate rejected: %s", certErr.Reason)
		}
		return fmt.Sprintf("peer certificate rejected: %s (peer identity %s); if you trust that peer, pass -trust %s", certErr.Reason, hash, hash)
	case errors.As(err, &connErr):
		switch {
		case connErr.Reason == qerr.HandshakeTimeout:
			return fmt.Sprintf("no QUIC handshake with %s before the timeout: is the peer running and reachable there? (raise -timeout if the path is slow)", addr)
		case connErr.Reason == qerr.ShutdownByTransport && connErr.Code == codeBadCertificate:
			return fmt.Sprintf("the peer at %s rejected this program's certificate (identity %s): start the peer with -trust %s, and use -cert/-key here so the identity stays the same", addr, self, self)
		case connErr.Reason == qerr.ShutdownByTransport && connErr.Code == codeCertificateRequired:
			return fmt.Sprintf("the peer at %s requires a client certificate", addr)
		case connErr.Reason == qerr.ShutdownByPeer:
			return fmt.Sprintf("the peer at %s closed the connection with code %d", addr, connErr.Code)
		case connErr.Reason == qerr.IdleTimeout:
			return fmt.Sprintf("connection to %s timed out: nothing received for the idle timeout", addr)
		}
		return fmt.Sprintf("connection with %s ended: %s", addr, strings.TrimPrefix(connErr.Error(), "quicconn: "))
	case errors.As(err, &cfgErr):
		return fmt.Sprintf("invalid configuration: %s", strings.TrimPrefix(cfgErr.Error(), "quicconn: "))
	}
	return strings.TrimPrefix(err.Error(), "quicconn: ")
}

// Usage is the error that makes a program exit with ExitUsage.
type Usage struct{ Msg string }

// Error returns the message.
func (u Usage) Error() string { return u.Msg }

// Usagef returns a Usage error.
func Usagef(format string, args ...any) error { return Usage{fmt.Sprintf(format, args...)} }

// Fail prints err as one line, "prog: message", on stderr and returns the
// exit code for it.
func Fail(prog string, err error) int {
	msg := err.Error()
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	fmt.Fprintf(os.Stderr, "%s: %s\n", prog, msg)
	var u Usage
	if errors.As(err, &u) {
		return ExitUsage
	}
	return ExitFailure
}

// ParseFlags parses args with fs, whose -help prints usage and then the
// flags. It returns done when the program should exit at once, with code:
// after -h or -help (the usage went to stdout) or a bad command line (one
// line on stderr, naming the program as fs does).
func ParseFlags(fs *flag.FlagSet, args []string, usage string) (code int, done bool) {
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.SetOutput(os.Stdout)
		fs.Usage()
		return ExitOK, true
	case err != nil:
		return Fail(fs.Name(), Usagef("%v (see -help)", err)), true
	case fs.NArg() > 0:
		return Fail(fs.Name(), Usagef("unexpected argument %q (see -help)", fs.Arg(0))), true
	}
	return 0, false
}
