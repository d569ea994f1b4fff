package cli

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// deadURL is a NATS URL on a loopback port nothing listens on.
func deadURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "nats://" + addr
}

// TestClientsFailFastWithoutNATS: with nothing at the URL, campaign submit
// and campaign watch fail within seconds, naming the URL and the cause.
func TestClientsFailFastWithoutNATS(t *testing.T) {
	url := deadURL(t)
	brief := filepath.Join(t.TempDir(), "c.json")
	example, err := os.ReadFile(filepath.Join("..", "..", "examples", "campaign.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(brief, example, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"campaign", "submit", brief, "--nats", url, "--wait"},
		{"campaign", "watch", "cmp-001", "--nats", url},
	} {
		t.Run(args[1], func(t *testing.T) {
			var out, errb bytes.Buffer
			start := time.Now()
			code := Main(context.Background(), args, &out, &errb)
			if d := time.Since(start); d > 8*time.Second {
				t.Fatalf("took %v", d)
			}
			msg := errb.String()
			if code == 0 || !strings.Contains(msg, url) || !strings.Contains(msg, "cannot reach NATS") || !strings.Contains(msg, "refused") {
				t.Fatalf("exit %d, stderr %q", code, msg)
			}
		})
	}
}
