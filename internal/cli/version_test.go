package cli

import (
	"bytes"
	"context"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestVersion(t *testing.T) {
	for _, arg := range []string{"version", "--version", "-version"} {
		var out, errb bytes.Buffer
		if code := Main(context.Background(), []string{arg}, &out, &errb); code != 0 {
			t.Fatalf("%s: exit %d: %s", arg, code, errb.String())
		}
		if s := out.String(); !strings.HasPrefix(s, "dealflow ") || !strings.Contains(s, runtime.Version()) || !strings.Contains(s, "revision ") {
			t.Fatalf("%s printed %q", arg, s)
		}
	}

	old := readBuildInfo
	t.Cleanup(func() { readBuildInfo = old })
	readBuildInfo = func() (*debug.BuildInfo, bool) {
		return &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Path: "github.com/dealflow/dealflow", Version: "v1.2.3"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abc123"}, {Key: "vcs.modified", Value: "true"}, {Key: "vcs.time", Value: "2026-11-27T07:00:00Z"}}}, true
	}
	v := Version()
	if v.Version != "v1.2.3" || v.Revision != "abc123" || !v.Modified || v.Go != "go1.26.0" {
		t.Fatalf("version %+v", v)
	}
	if got, want := v.String(), "dealflow v1.2.3 (github.com/dealflow/dealflow) revision abc123 (modified) 2026-11-27T07:00:00Z go1.26.0"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	readBuildInfo = func() (*debug.BuildInfo, bool) { return nil, false }
	if v := Version(); v.Version != "(devel)" || v.Revision != "unknown" || v.Go != runtime.Version() {
		t.Fatalf("without build info %+v", v)
	}
}
