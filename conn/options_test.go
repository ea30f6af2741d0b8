package conn_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quicconn/quicconn/conn"
)

// syncBuffer is a bytes.Buffer safe for the concurrent writes of TLS and
// slog.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestOptions: WithKeyLog writes NSS key log lines, WithQlogDir writes a
// qlog trace per connection, WithLogger receives lifecycle records.
func TestOptions(t *testing.T) {
	e := newEnv(t, envOptions{})
	var keys, logs syncBuffer
	dir := filepath.Join(t.TempDir(), "qlog")
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c, err := conn.New(e.reg, e.clientCred, conn.WithKeyLog(&keys), conn.WithQlogDir(dir), conn.WithLogger(logger))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	go func() {
		s, err := e.ln.Accept(ctx)
		if err == nil {
			s.Accept(ctx)
		}
	}()
	if err := c.Start(ctx, e.cfg, e.host, e.port); err != nil {
		t.Fatal(err)
	}
	if err := c.ShutdownAndWait(ctx, 0); err != nil {
		t.Fatal(err)
	}
	for _, label := range []string{"CLIENT_HANDSHAKE_TRAFFIC_SECRET", "CLIENT_TRAFFIC_SECRET_0"} {
		if !strings.Contains(keys.String(), label) {
			t.Errorf("key log lacks %s", label)
		}
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*_client.sqlog"))
	if len(files) != 1 {
		t.Fatalf("qlog files: %v", files)
	}
	if b, _ := os.ReadFile(files[0]); !bytes.Contains(b, []byte("connection_started")) {
		t.Errorf("qlog trace has no connection_started event")
	}
	for _, want := range []string{"quicconn: connected", "quicconn: shutdown complete"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
	if strings.Contains(logs.String(), "SECRET") {
		t.Error("the log contains key material")
	}
}
