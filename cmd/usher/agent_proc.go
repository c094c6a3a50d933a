package main

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/usherlb/usher/internal/pki"
)

// agentProc is an agent child process of the demo or the scale benchmark,
// its output in a log file of its own.
type agentProc struct {
	logPath string
	cmd     *exec.Cmd
	exited  chan struct{} // closed once the process has been reaped
	waitErr error         // how it ended; read after exited is closed
}

// start runs exe with args, env added to this process's environment, its
// stdout and stderr going to a new file at logPath, and reaps it in a
// goroutine that closes exited.
func (p *agentProc) start(exe, logPath string, args, env []string) error {
	p.logPath = logPath
	logf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logf.Close() // the child holds its own copy
	cmd := exec.Command(exe, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = demoProcAttr()
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	p.cmd = cmd
	p.exited = make(chan struct{})
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	return nil
}

// agentAddrs names a local agent and the loopback addresses it serves.
type agentAddrs struct {
	name    string
	gossip  netip.AddrPort // memberlist; Raft uses the next port
	session netip.AddrPort
	http    netip.AddrPort
}

// agentArgs returns the command line of agent a with profile fast in vip
// mode bind at vip, its data under dataDir, bootstrapping with expect
// voters and joining seeds (a itself left out); more follows it.
func agentArgs(a agentAddrs, vip netip.AddrPort, expect int, dataDir string, seeds []agentAddrs, more ...string) []string {
	args := []string{"agent",
		"-node", a.name,
		"-bind", a.gossip.String(),
		"-session-addr", a.session.String(),
		"-http", a.http.String(),
		"-vip", vip.String(),
		"-vip-mode", "bind",
		"-bootstrap-expect", strconv.Itoa(expect),
		"-data-dir", dataDir,
		"-profile", "fast",
		"-log-level", "info",
	}
	for _, s := range seeds {
		if s.name != a.name {
			args = append(args, "-join", s.gossip.String())
		}
	}
	return append(args, more...)
}

// localFarmName is the farm name (label) of the farms the demo and the
// scale benchmark run.
const localFarmName = "usher-local"

// localFarmArgs returns the flags that give agent name of a local farm its
// credentials, as a real farm has them (bootstrap_expect above 1 requires
// them): the farm's label, its gossip key and its Raft TLS files. The first
// call for a scratch directory dir makes the farm's CA and gossip key in it;
// each node's certificate is made on its first call and reused on the
// next (a restarted agent).
func localFarmArgs(dir, name string) ([]string, error) {
	caFile := filepath.Join(dir, "usher-"+localFarmName+"-ca.pem")
	caKeyFile := filepath.Join(dir, "usher-"+localFarmName+"-ca-key.pem")
	keyFile := filepath.Join(dir, "gossip.key")
	if _, err := os.Stat(caFile); errors.Is(err, fs.ErrNotExist) {
		ca, err := pki.NewCA(localFarmName, time.Now(), 7*24*time.Hour, rand.Reader)
		if err != nil {
			return nil, err
		}
		caKey, err := ca.KeyPEM()
		if err != nil {
			return nil, err
		}
		gossip := make([]byte, 32)
		rand.Read(gossip)
		if err := writeFiles(io.Discard, []file{
			{caFile, ca.CertPEM(), 0o644},
			{caKeyFile, caKey, 0o600},
			{keyFile, []byte(base64.StdEncoding.EncodeToString(gossip)), 0o600},
		}); err != nil {
			return nil, err
		}
	}
	gossip, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, err
	}
	base := filepath.Join(dir, "usher-"+localFarmName+"-"+fileSafe(name))
	if _, err := os.Stat(base + ".pem"); errors.Is(err, fs.ErrNotExist) {
		ca, err := loadCA(dir, caFile, caKeyFile)
		if err != nil {
			return nil, err
		}
		cert, key, err := ca.Issue(name, time.Now(), 7*24*time.Hour, rand.Reader)
		if err != nil {
			return nil, err
		}
		if err := writeFiles(io.Discard, []file{{base + ".pem", cert, 0o644}, {base + "-key.pem", key, 0o600}}); err != nil {
			return nil, err
		}
	}
	return []string{
		"-label", localFarmName,
		"-encrypt-key", string(gossip),
		"-tls-ca-file", caFile,
		"-tls-cert-file", base + ".pem",
		"-tls-key-file", base + "-key.pem",
	}, nil
}
