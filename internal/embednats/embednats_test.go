package embednats

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dealflow/dealflow/internal/loopport"
)

// TestDataDirLock: a second server on the same store directory fails at
// once with a message naming the directory and the lock; once the first
// closes, the directory is free again.
func TestDataDirLock(t *testing.T) {
	dir := t.TempDir()
	first, err := Start(Options{StoreDir: dir, Port: -1})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	second, err := Start(Options{StoreDir: dir, Port: -1})
	if err == nil {
		second.Close()
		first.Close()
		t.Fatal("a second server started on the same data dir")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("the second start took %v to fail", d)
	}
	if msg := err.Error(); !strings.Contains(msg, dir) || !strings.Contains(msg, filepath.Join(dir, LockFile)) || !strings.Contains(msg, "in use") {
		t.Fatalf("error %q does not name the dir and the lock", msg)
	}
	first.Close()
	again, err := Start(Options{StoreDir: dir, Port: -1})
	if err != nil {
		t.Fatalf("after the first closed: %v", err)
	}
	again.Close()
}

// TestMonitorPort: HTTPPort serves the server's own monitoring endpoints,
// in-process-only servers too, so nats-server tooling and exporters work.
func TestMonitorPort(t *testing.T) {
	port, err := loopport.Free()
	if err != nil {
		t.Fatal(err)
	}
	s, err := Start(Options{StoreDir: t.TempDir(), Port: -1, HTTPPort: port})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, path := range []string{"/varz", "/jsz", "/healthz"} {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", port, path))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(strings.TrimSpace(string(body)), "{") {
			t.Fatalf("GET %s: %d %.100s", path, resp.StatusCode, body)
		}
	}
}
