package farm

import (
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// countingIssuer is InProcess, counting the files it is asked for.
type countingIssuer struct {
	InProcess
	cas, certs, keys int
}

func (c *countingIssuer) NewCA(dir, label string) error {
	c.cas++
	return c.InProcess.NewCA(dir, label)
}

func (c *countingIssuer) NewCert(dir, label, node string) error {
	c.certs++
	return c.InProcess.NewCert(dir, label, node)
}

func (c *countingIssuer) NewGossipKey() (string, error) {
	c.keys++
	return c.InProcess.NewGossipKey()
}

// TestCredentials checks that a farm's CA and gossip key are made once,
// each node's certificate once and then reused, and that the flags name
// files a node can load.
func TestCredentials(t *testing.T) {
	is := &countingIssuer{}
	c := Credentials{Dir: t.TempDir(), Label: Label, Issuer: is}
	a1, err := c.Args("n1")
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.Args("n1")
	if err != nil {
		t.Fatalf("a restarted agent's credentials: %v", err)
	}
	if !slices.Equal(a1, again) {
		t.Errorf("credentials changed on a restart:\n%v\n%v", a1, again)
	}
	a2, err := c.Args("n/2")
	if err != nil {
		t.Fatal(err)
	}
	if is.cas != 1 || is.keys != 1 || is.certs != 2 {
		t.Errorf("made %d CAs, %d gossip keys, %d certificates; want 1, 1, 2", is.cas, is.keys, is.certs)
	}
	if !slices.Contains(a2, filepath.Join(c.Dir, "usher-"+Label+"-n_2.pem")) {
		t.Errorf("node n/2's certificate is not at a file-safe path: %v", a2)
	}
	checkCredentials(t, c, "n2")
	if _, err := (Credentials{Dir: t.TempDir(), Label: "not a label"}).Args("n1"); err == nil {
		t.Error("a farm with an invalid label got credentials")
	}
}

// TestStop checks that Stop ends every process it started, by SIGTERM
// within the grace or SIGKILL after it, removes the scratch directory, and
// reports no error for an agent that had ended on its own.
func TestStop(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep(1)")
	}
	tests := []struct {
		name  string
		grace time.Duration
	}{{"kill at once", 0}, {"term first", 5 * time.Second}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := New("usher-farm-test-", Loopback(1), []Addrs{{Name: "a"}, {Name: "b"}, {Name: "gone"}}, 1, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range f.Agents {
				secs := "60"
				if a.Name == "gone" {
					secs = "0"
				}
				if err := f.Start(sleep, a, []string{secs}, nil); err != nil {
					t.Fatal(err)
				}
			}
			<-f.Agents[2].Exited()
			begun := time.Now()
			if err := f.Stop(tt.grace); err != nil {
				t.Errorf("Stop: %v", err)
			}
			if d := time.Since(begun); d > 4*time.Second {
				t.Errorf("Stop took %v: sleep ends on SIGTERM", d)
			}
			if n := f.ExitedCount(); n != 3 {
				t.Errorf("%d of 3 processes ended", n)
			}
			if _, err := os.Stat(f.Dir); !os.IsNotExist(err) {
				t.Errorf("scratch directory %s left: %v", f.Dir, err)
			}
			if err := f.Stop(tt.grace); err != nil { // idempotent
				t.Errorf("second Stop: %v", err)
			}
		})
	}
}

// TestStartCmd checks that a command the caller built runs as built, its
// output in the log file, and that a command that cannot start leaves
// the Proc unstarted.
func TestStartCmd(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh(1)")
	}
	dir := t.TempDir()
	cmd := exec.Command(sh, "-c", `echo "out $WHO"; echo err >&2; exit 3`)
	cmd.Env = []string{"WHO=caller"}
	var p Proc
	if err := p.StartCmd(cmd, filepath.Join(dir, "p.log")); err != nil {
		t.Fatal(err)
	}
	<-p.Exited()
	if ee, ok := p.WaitErr().(*exec.ExitError); !ok || ee.ExitCode() != 3 {
		t.Errorf("WaitErr = %v, want exit status 3", p.WaitErr())
	}
	if b, _ := os.ReadFile(p.LogPath); string(b) != "out caller\nerr\n" {
		t.Errorf("log %q", b)
	}
	var bad Proc
	if err := bad.StartCmd(exec.Command(filepath.Join(dir, "missing")), filepath.Join(dir, "bad.log")); err == nil {
		t.Error("a missing program started")
	}
	if bad.Started() || bad.HasExited() {
		t.Error("a Proc that did not start says it started")
	}
}

// checkCredentials runs an agent command line with c's credentials for
// name through the agent's own configuration checks (CheckArgs), and
// checks that those checks see a certificate of another node.
func checkCredentials(t *testing.T, c Credentials, name string) {
	t.Helper()
	creds, err := c.Args(name)
	if err != nil {
		t.Fatal(err)
	}
	ap := netip.MustParseAddrPort
	spec := AgentSpec{
		Addrs:   Addrs{Name: name, Gossip: ap("127.0.0.1:7946"), Session: ap("127.0.0.1:3479"), HTTP: ap("127.0.0.1:7480")},
		VIP:     ap("127.0.0.100:3478"),
		Expect:  3,
		DataDir: t.TempDir(),
		Extra:   creds,
	}
	if err := CheckArgs(spec.Args()); err != nil {
		t.Errorf("%s's command line: %v", name, err)
	}
	spec.Name = name + "x"
	if err := CheckArgs(spec.Args()); err == nil {
		t.Errorf("%s's certificate passed as %s's", name, spec.Name)
	}
}
