//go:build !unix

package loadsrc

import "os/exec"

// setProcessGroup leaves cmd alone: without process groups only the
// command itself is killed when the context ends.
func setProcessGroup(*exec.Cmd) {}
