//go:build !unix

package embednats

import "os"

// lockDir does not lock on platforms without flock.
func lockDir(string) (*os.File, error) { return nil, nil }

func unlockDir(*os.File) {}
