package vip

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// scriptMode holds the balancer address by running the operator's
// commands, for clouds that move addresses through an API. Each command
// runs with `sh -c` and sees USHER_VIP, USHER_NODE and USHER_TERM in its
// environment; a non-zero exit is an error that quotes the end of its
// output. The probe socket is bound (IP_FREEBIND) for the agent's life.
type scriptMode struct {
	conn             *net.UDPConn
	acquire, release string
	env              []string
	timeout          time.Duration
}

// newScript returns a mode that runs acquire and release for the balancer
// address vip on behalf of node, each bounded by timeout, and answers
// probes on conn.
func newScript(conn *net.UDPConn, acquire, release, vip, node string, timeout time.Duration) *scriptMode {
	return &scriptMode{
		conn:    conn,
		acquire: acquire,
		release: release,
		env:     []string{"USHER_VIP=" + vip, "USHER_NODE=" + node},
		timeout: timeout,
	}
}

// take runs the acquire command for term.
func (v *scriptMode) take(term uint64) (*net.UDPConn, error) {
	if err := v.run("acquire", v.acquire, term); err != nil {
		return nil, err
	}
	return v.conn, nil
}

// drop runs the release command. The Holder calls it only after a take
// that succeeded: in a cloud, releasing an address this node did not take
// could take it away from the node that holds it now.
func (v *scriptMode) drop() error {
	return v.run("release", v.release, 0)
}

// close closes the probe socket.
func (v *scriptMode) close() error { return v.conn.Close() }

func (v *scriptMode) run(what, command string, term uint64) error {
	if command == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), v.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", command)
	cmd.Env = append(os.Environ(), v.env...)
	cmd.Env = append(cmd.Env, "USHER_TERM="+strconv.FormatUint(term, 10))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		tail := strings.TrimSpace(out.String())
		if len(tail) > 200 {
			tail = "..." + tail[len(tail)-200:]
		}
		return fmt.Errorf("vip %s script: %w: %s", what, err, tail)
	}
	return nil
}
