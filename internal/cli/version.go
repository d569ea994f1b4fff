package cli

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// VersionInfo is what `dealflow version` prints: the module version, the VCS
// revision it was built from (and whether the tree had local changes) and
// the Go version, from the binary's build information.
type VersionInfo struct {
	Module   string
	Version  string
	Revision string
	Time     string
	Modified bool
	Go       string
}

// readBuildInfo is debug.ReadBuildInfo; tests replace it.
var readBuildInfo = debug.ReadBuildInfo

// Version reads the build information embedded in the binary.
func Version() VersionInfo {
	v := VersionInfo{Module: "github.com/dealflow/dealflow", Version: "(devel)", Revision: "unknown", Go: runtime.Version()}
	bi, ok := readBuildInfo()
	if !ok {
		return v
	}
	if bi.Main.Path != "" {
		v.Module = bi.Main.Path
	}
	if bi.Main.Version != "" {
		v.Version = bi.Main.Version
	}
	if bi.GoVersion != "" {
		v.Go = bi.GoVersion
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Revision = s.Value
		case "vcs.time":
			v.Time = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}

// String is the one line `dealflow version` prints.
func (v VersionInfo) String() string {
	rev := v.Revision
	if v.Modified {
		rev += " (modified)"
	}
	s := fmt.Sprintf("dealflow %s (%s) revision %s", v.Version, v.Module, rev)
	if v.Time != "" {
		s += " " + v.Time
	}
	return s + " " + v.Go
}

func printVersion(w io.Writer) { fmt.Fprintln(w, Version().String()) }
