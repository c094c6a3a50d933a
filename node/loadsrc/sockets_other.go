//go:build !linux

package loadsrc

import (
	"context"
	"errors"
)

// sockets is the sockets source where sock_diag does not exist: every
// reading fails, so the figure is never OK.
type sockets struct{}

func newSockets(Settings) *sockets { return &sockets{} }

// Poll fails: counting sockets needs Linux's sock_diag.
func (*sockets) Poll(context.Context) (Reading, error) {
	return Reading{}, errors.New("sockets: counting sockets needs linux sock_diag")
}
