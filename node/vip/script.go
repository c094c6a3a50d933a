package vip

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ScriptVIP holds the balancer address by running the operator's commands,
// for clouds that move addresses through an API. Each command runs with
// `sh -c` and sees USHER_VIP, USHER_NODE and USHER_TERM in its environment;
// a non-zero exit is an error that quotes the end of its output.
type ScriptVIP struct {
	acquire, release string
	env              []string
	timeout          time.Duration

	mu   sync.Mutex
	held bool
}

// NewScriptVIP returns a VIP that runs acquire and release for the balancer
// address vip on behalf of node, each bounded by timeout.
func NewScriptVIP(acquire, release, vip, node string, timeout time.Duration) *ScriptVIP {
	return &ScriptVIP{
		acquire: acquire,
		release: release,
		env:     []string{"USHER_VIP=" + vip, "USHER_NODE=" + node},
		timeout: timeout,
	}
}

// Acquire runs the acquire command for term, unless the address is held.
func (v *ScriptVIP) Acquire(term uint64) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.held {
		return nil
	}
	if err := v.run("acquire", v.acquire, term); err != nil {
		return err
	}
	v.held = true
	return nil
}

// Release runs the release command if the address is held. A node never
// runs it for an address it did not take: in a cloud, that could take the
// address away from the node that holds it now.
func (v *ScriptVIP) Release() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if !v.held {
		return nil
	}
	v.held = false
	return v.run("release", v.release, 0)
}

func (v *ScriptVIP) run(what, command string, term uint64) error {
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
