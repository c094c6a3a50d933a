//go:build linux

package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
)

// errNoPrivilege marks an ip(8) failure caused by missing privileges, so
// NewFarm can skip instead of failing on machines where root is not enough
// (for example an unprivileged container).
var errNoPrivilege = errors.New("operation not permitted")

// ipPath finds iproute2's ip binary once: on PATH first, then in the two
// places distributions install it when PATH lacks the sbin directories.
var ipPath = sync.OnceValues(func() (string, error) {
	if p, err := exec.LookPath("ip"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/ip", "/sbin/ip"} {
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", errors.New("iproute2's ip command not found (looked on PATH, /usr/sbin/ip and /sbin/ip)")
})

// ip runs ip(8) with args and returns its standard output. A failure carries
// the command line and ip's own message.
func ip(args ...string) (string, error) {
	path, err := ipPath()
	if err != nil {
		return "", err
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(path, args...)
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if strings.Contains(msg, "Operation not permitted") {
			err = errors.Join(err, errNoPrivilege)
		}
		return "", fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, msg)
	}
	return stdout.String(), nil
}

// listNamespaces returns the names of all named network namespaces, as
// `ip netns list` shows them.
func listNamespaces() ([]string, error) {
	out, err := ip("netns", "list")
	if err != nil {
		return nil, err
	}
	var names []string
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			names = append(names, f[0])
		}
	}
	return names, nil
}
