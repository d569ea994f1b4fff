package embednats

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
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
