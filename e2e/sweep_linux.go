//go:build linux

package e2e

import (
	"errors"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// sweepOnce runs SweepStale the first time a farm is built in this process.
var sweepOnce = sync.OnceValues(SweepStale)

// SweepStale deletes the namespaces that crashed or killed runs of the
// harness left behind: those whose name starts with Prefix and encodes the
// PID (modulo 100000) of a process that no longer exists. Namespaces of live
// processes, this one included, and namespaces without the prefix are never
// touched. A PID number reused by an unrelated process only delays the
// sweep until that process ends. It returns the names it deleted. NewFarm
// calls it once per process.
func SweepStale() ([]string, error) {
	names, err := listNamespaces()
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, n := range names {
		pid, ok := ownerPID(n)
		if !ok || pidAlive(pid) {
			continue
		}
		if _, err := ip("netns", "del", n); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, n)
	}
	return removed, errors.Join(errs...)
}

// ownerPID extracts the PID from a harness namespace name
// ("ushe2e-<pid>-<farm>-<host>"). ok is false for any other name.
func ownerPID(name string) (pid int, ok bool) {
	rest, found := strings.CutPrefix(name, Prefix)
	if !found {
		return 0, false
	}
	digits, _, found := strings.Cut(rest, "-")
	if !found {
		return 0, false
	}
	pid, err := strconv.Atoi(digits)
	if err != nil || pid <= 0 {
		return 0, false
	}
	return pid, true
}

// pidAlive reports whether a process with this PID exists. EPERM means it
// exists but belongs to someone else; anything but ESRCH counts as alive,
// erring on the side of keeping a namespace.
func pidAlive(pid int) bool {
	return !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}
