//go:build !unix

package cluster

import (
	"os"
	"path/filepath"
)

// lockDir opens dir/LOCK without locking it: advisory locks are implemented
// for unix systems only.
func lockDir(dir string) (*os.File, error) {
	return os.OpenFile(filepath.Join(dir, "LOCK"), os.O_RDWR|os.O_CREATE, 0o600)
}
