package contracts

import (
	"os"
	"path/filepath"
	"testing"
)

// TestDir: the folder is this module's, and it holds what the tests read,
// each part with its licence.
func TestDir(t *testing.T) {
	dir, err := Dir()
	if err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	if want, _ := filepath.Abs(filepath.Join(wd, "..", "..", "contracts")); dir != want {
		t.Fatalf("Dir() = %s, want %s", dir, want)
	}
	for _, rel := range []string{"README.md", "adcp/LICENSE", "adcp/3.1.19/manifest.json", "seller-agent/LICENSE", "seller-agent/openapi.json",
		"iab-primitives/LICENSE", "iab-primitives/spec/fixtures/primitives/Package.golden.json"} {
		p, err := Path(rel)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s: %v", rel, err)
		}
	}
}

// TestDirOutsideAModule: no go.mod above the working directory is an
// error, not a search of the rest of the file system.
func TestDirOutsideAModule(t *testing.T) {
	t.Chdir(t.TempDir())
	if dir, err := Dir(); err == nil {
		t.Fatalf("Dir() = %s outside a module", dir)
	}
}
