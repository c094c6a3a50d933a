package cluster

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// logBuffer is a bytes.Buffer safe for a logger's concurrent writes.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// transferTo hands leadership of the farm to the node named to and waits
// until it leads.
func transferTo(t *testing.T, nodes []*Cluster, to string) *Cluster {
	t.Helper()
	target := nodeNamed(nodes, to)
	eventually(t, 20*time.Second, "leadership on "+to, func() bool {
		if target.raft.State() == raft.Leader {
			return true
		}
		for _, c := range nodes {
			if c.raft.State() == raft.Leader {
				c.raft.LeadershipTransferToServer(raft.ServerID(to), raft.ServerAddress(target.RaftAddr())).Error()
			}
		}
		return false
	})
	return target
}

// farmKey waits until every node's state holds the ticket key want.
func farmKey(t *testing.T, nodes []*Cluster, want []byte, what string) {
	t.Helper()
	eventually(t, 10*time.Second, what, func() bool {
		for _, c := range nodes {
			if !bytes.Equal(c.State().TicketKey, want) {
				return false
			}
		}
		return true
	})
}

// TestConfiguredTicketKey runs three voters, n1 and n2 configured with
// ticket keys of their own and n3 with none, and moves leadership among
// them: a leader with a configured key makes it the farm's, replacing the
// key before it (a rotation); a leader without one keeps the farm's; and a
// node whose key is not the farm's says so in its log, naming ticket_key
// but never a key.
func TestConfiguredTicketKey(t *testing.T) {
	k1 := bytes.Repeat([]byte{0x11}, TicketKeySize)
	k2 := bytes.Repeat([]byte{0x22}, TicketKeySize)
	var logs logBuffer
	nodes := startFarmWith(t, 3, 3, nil, func(c *Config) {
		switch c.NodeName {
		case "n1":
			c.TicketKey = k1
			c.Logger = hclog.New(&hclog.LoggerOptions{Name: "n1", Level: hclog.Trace, Output: &logs})
		case "n2":
			c.TicketKey = k2
		}
	})
	waitSingleServer(t, nodes, 20*time.Second)

	transferTo(t, nodes, "n1")
	farmKey(t, nodes, k1, "the farm's key to be n1's ticket_key")
	before := len(logs.String())
	transferTo(t, nodes, "n2")
	farmKey(t, nodes, k2, "n2's ticket_key to replace n1's")
	transferTo(t, nodes, "n3")
	// n3 has no key of its own: the farm's stays. Give it the time it
	// would take to propose one.
	time.Sleep(2 * time.Second)
	farmKey(t, nodes, k2, "the farm's key to stay n2's under n3")

	eventually(t, 5*time.Second, "n1's warning", func() bool {
		return strings.Contains(logs.String()[before:], "not this node's configured ticket_key")
	})
	out := logs.String()
	if n := strings.Count(out[before:], "not this node's configured ticket_key"); n != 1 {
		t.Errorf("n1 warned %d times about one change of the farm's key, want once:\n%s", n, out)
	}
	for _, k := range [][]byte{k1, k2} {
		if strings.Contains(out, hex.EncodeToString(k[:8])) || strings.Contains(out, fmt.Sprint(k[:8])[1:]) {
			t.Errorf("n1's log shows a ticket key:\n%s", out)
		}
	}
}
