package farm

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/usherlb/usher/internal/pki"
)

// Proc is an agent child process, its output in a log file of its own.
type Proc struct {
	LogPath string
	Cmd     *exec.Cmd
	exited  chan struct{} // closed once the process has been reaped
	waitErr error         // how it ended; read after exited is closed
}

// Start runs exe with args, env added to this process's environment, its
// stdout and stderr going to a new file at logPath, and reaps it in a
// goroutine that closes the channel Exited returns.
func (p *Proc) Start(exe, logPath string, args, env []string) error {
	p.LogPath = logPath
	logf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logf.Close() // the child holds its own copy
	cmd := exec.Command(exe, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = procAttr()
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	p.Cmd = cmd
	p.exited = make(chan struct{})
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	return nil
}

// Started reports whether Start launched the process.
func (p *Proc) Started() bool { return p.Cmd != nil }

// Exited returns a channel closed once the process has ended and been
// reaped; nil (blocking forever) before Start.
func (p *Proc) Exited() <-chan struct{} { return p.exited }

// HasExited reports whether the process was started and has ended.
func (p *Proc) HasExited() bool {
	if p.exited == nil {
		return false
	}
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// WaitErr is how the process ended; valid once Exited is closed.
func (p *Proc) WaitErr() error { return p.waitErr }

// Addrs names a local agent and the loopback addresses it serves.
type Addrs struct {
	Name    string
	Gossip  netip.AddrPort // memberlist; Raft uses the next port
	Session netip.AddrPort
	HTTP    netip.AddrPort
}

// AgentArgs returns the command line of agent a with profile fast in vip
// mode bind at vip, its data under dataDir, bootstrapping with expect
// voters and joining seeds (a itself left out); more follows it.
func AgentArgs(a Addrs, vip netip.AddrPort, expect int, dataDir string, seeds []Addrs, more ...string) []string {
	args := []string{"agent",
		"-node", a.Name,
		"-bind", a.Gossip.String(),
		"-session-addr", a.Session.String(),
		"-http", a.HTTP.String(),
		"-vip", vip.String(),
		"-vip-mode", "bind",
		"-bootstrap-expect", strconv.Itoa(expect),
		"-data-dir", dataDir,
		"-profile", "fast",
		"-log-level", "info",
	}
	for _, s := range seeds {
		if s.Name != a.Name {
			args = append(args, "-join", s.Gossip.String())
		}
	}
	return append(args, more...)
}

// Label is the farm name (label) of the local farms.
const Label = "usher-local"

// CredentialArgs returns the flags that give agent name of a local farm its
// credentials, as a real farm has them (bootstrap_expect above 1 requires
// them): the farm's label, its gossip key and its Raft TLS files. The first
// call for a scratch directory dir makes the farm's CA and gossip key in it;
// each node's certificate is made on its first call and reused on the
// next (a restarted agent).
func CredentialArgs(dir, name string) ([]string, error) {
	caFile := pki.CABase(dir, Label) + ".pem"
	caKeyFile := pki.CABase(dir, Label) + "-key.pem"
	keyFile := filepath.Join(dir, "gossip.key")
	if err := makeCA(caFile, caKeyFile, keyFile); err != nil {
		return nil, err
	}
	gossip, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, err
	}
	base := pki.NodeBase(dir, Label, name)
	if err := issue(caFile, caKeyFile, base, name); err != nil {
		return nil, err
	}
	return []string{
		"-label", Label,
		"-encrypt-key", string(gossip),
		"-tls-ca-file", caFile,
		"-tls-cert-file", base + ".pem",
		"-tls-key-file", base + "-key.pem",
	}, nil
}

// makeCA writes the farm's CA and gossip key unless caFile exists.
func makeCA(caFile, caKeyFile, keyFile string) error {
	if _, err := os.Stat(caFile); !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	ca, err := pki.NewCA(Label, time.Now(), 7*24*time.Hour, rand.Reader)
	if err != nil {
		return err
	}
	caKey, err := ca.KeyPEM()
	if err != nil {
		return err
	}
	gossip := make([]byte, 32)
	rand.Read(gossip)
	return pki.WriteNew([]pki.File{
		{Path: caFile, Data: ca.CertPEM(), Mode: 0o644},
		{Path: caKeyFile, Data: caKey, Mode: 0o600},
		{Path: keyFile, Data: []byte(base64.StdEncoding.EncodeToString(gossip)), Mode: 0o600},
	}, nil)
}

// issue writes node name's certificate and key at base.pem and
// base-key.pem unless they exist.
func issue(caFile, caKeyFile, base, name string) error {
	if _, err := os.Stat(base + ".pem"); !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	certPEM, err := os.ReadFile(caFile)
	if err != nil {
		return err
	}
	keyPEM, err := os.ReadFile(caKeyFile)
	if err != nil {
		return err
	}
	ca, err := pki.ParseCA(certPEM, keyPEM)
	if err != nil {
		return fmt.Errorf("%s: %w", caFile, err)
	}
	cert, key, err := ca.Issue(name, time.Now(), 7*24*time.Hour, rand.Reader)
	if err != nil {
		return err
	}
	return pki.WriteNew([]pki.File{{Path: base + ".pem", Data: cert, Mode: 0o644}, {Path: base + "-key.pem", Data: key, Mode: 0o600}}, nil)
}
