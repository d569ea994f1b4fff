// Package contracts locates the third-party contract files copied into the
// repository's contracts/ folder (see contracts/README.md): the AdCP
// schemas, the seller-agent OpenAPI document and the IAB primitives
// fixtures. Tests read them from the checkout they run in, so a clone of
// the repository alone runs them.
package contracts

import (
	"errors"
	"os"
	"path/filepath"
)

// Dir returns the contracts folder of the module the working directory is
// in: <module root>/contracts, the module root being the nearest directory
// at or above the working directory that holds go.mod. `go test` runs each
// package's tests in its directory, so they find their own checkout's
// folder and nothing outside it.
func Dir() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			c := filepath.Join(dir, "contracts")
			if st, err := os.Stat(c); err != nil || !st.IsDir() {
				return "", errors.New("contracts: no contracts folder in the module at " + dir)
			}
			return c, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("contracts: the working directory is not inside a Go module")
		}
		dir = parent
	}
}

// Path is the file or folder at rel (slash-separated, such as
// "seller-agent/openapi.json") inside Dir.
func Path(rel string) (string, error) {
	dir, err := Dir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, filepath.FromSlash(rel)), nil
}
