package packaging

import (
	"bytes"
	"errors"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDebianPackage builds the package with make package, checks its
// control data and contents (and runs lintian when installed), installs
// it, runs the installed usher version and usher validate on the installed
// example configuration, verifies the unit with systemd-analyze, runs the
// installed binary on
// the installed configuration as the usher user until it tells its notify
// socket READY=1, and purges the package again. A machine that had the
// package installed keeps it: the test then stops after the build checks.
func TestDebianPackage(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("installing a package needs root")
	}
	for _, tool := range []string{"make", "go", "dpkg", "dpkg-deb", "dpkg-query", "getent", "userdel"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
	deb := buildPackage(t)
	version := strings.TrimSpace(run(t, "dpkg-deb", "-f", deb, "Version"))
	checkContents(t, deb)
	lint(t, deb)
	if installed() {
		t.Log("the usher package was installed before the test: it stays, and the install checks are skipped")
		return
	}
	hadUser := run(t, "sh", "-c", "getent passwd usher || true") != ""
	t.Cleanup(func() { purge(t, hadUser) })
	run(t, "dpkg", "-i", deb)

	if got := run(t, "/usr/bin/usher", "version"); !strings.HasPrefix(got, "usher "+version+" ") {
		t.Errorf("usher version says %q, want version %s", got, version)
	}
	run(t, "/usr/bin/usher", "validate", "/etc/usher/usher.hcl")
	checkUser(t)
	verifyUnit(t)
	runInstalled(t)
}

// buildPackage runs make package into a temporary directory and returns
// the package's path.
func buildPackage(t *testing.T) string {
	t.Helper()
	out := run(t, "make", "--no-print-directory", "-C", "..", "package", "PKG_OUT="+t.TempDir())
	lines := strings.Split(strings.TrimSpace(out), "\n")
	deb := lines[len(lines)-1]
	if !strings.HasSuffix(deb, ".deb") {
		t.Fatalf("make package printed no package:\n%s", out)
	}
	return deb
}

// checkContents holds the package's files and conffiles against what it
// must install.
func checkContents(t *testing.T, deb string) {
	t.Helper()
	contents := run(t, "dpkg-deb", "--contents", deb)
	for _, want := range []string{
		"-rwxr-xr-x root/root .* ./usr/bin/usher",
		"./lib/systemd/system/usher.service",
		"./etc/usher/usher.hcl",
		"./usr/share/man/man1/usher.1.gz",
		"./usr/share/doc/usher/copyright",
		"./usr/share/bash-completion/completions/usher",
		"./usr/share/zsh/vendor-completions/_usher",
	} {
		if !containsLine(contents, want) {
			t.Errorf("the package lacks %s:\n%s", want, contents)
		}
	}
	ctl := t.TempDir()
	run(t, "dpkg-deb", "--control", deb, ctl)
	conffiles, err := os.ReadFile(filepath.Join(ctl, "conffiles"))
	if err != nil || strings.TrimSpace(string(conffiles)) != "/etc/usher/usher.hcl" {
		t.Errorf("conffiles %q (%v), want /etc/usher/usher.hcl", conffiles, err)
	}
	for _, script := range []string{"postinst", "prerm", "postrm"} {
		if _, err := os.Stat(filepath.Join(ctl, script)); err != nil {
			t.Errorf("no %s: %v", script, err)
		}
	}
}

// containsLine reports whether a line of text has the fields of want, a
// space-separated pattern in which ".*" matches any fields.
func containsLine(text, want string) bool {
	pat := strings.Fields(want)
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[len(f)-1] != pat[len(pat)-1] {
			continue
		}
		if len(pat) == 1 || (f[0] == pat[0] && f[1] == pat[1]) {
			return true
		}
	}
	return false
}

// lint runs lintian on the package, failing on errors and warnings, when
// lintian is installed (.ci/run installs it).
func lint(t *testing.T, deb string) {
	t.Helper()
	if _, err := exec.LookPath("lintian"); err != nil {
		t.Log("lintian is not installed: the package is checked with dpkg-deb only")
		return
	}
	run(t, "lintian", "--fail-on", "error,warning", "--tag-display-limit", "0", deb)
}

// installed reports whether the usher package is installed.
func installed() bool {
	out, err := exec.Command("dpkg-query", "-W", "-f=${Status}", "usher").Output()
	return err == nil && strings.HasSuffix(string(out), " installed")
}

// checkUser checks what postinst made: the system user and group usher,
// the data directory it owns, the configuration it reads through its group.
func checkUser(t *testing.T) {
	t.Helper()
	pw := strings.Split(strings.TrimSpace(run(t, "getent", "passwd", "usher")), ":")
	if len(pw) != 7 || pw[5] != "/var/lib/usher" || !strings.HasSuffix(pw[6], "nologin") {
		t.Errorf("user usher is %v, want home /var/lib/usher and no login shell", pw)
	}
	if uid, _ := strconv.Atoi(pw[2]); uid >= 1000 {
		t.Errorf("user usher has uid %d, not a system user's", uid)
	}
	for path, want := range map[string]string{
		"/var/lib/usher":       "usher:usher 750",
		"/etc/usher":           "root:usher 750",
		"/etc/usher/usher.hcl": "root:usher 640",
	} {
		if got := strings.TrimSpace(run(t, "stat", "-c", "%U:%G %a", path)); got != want {
			t.Errorf("%s is %s, want %s", path, got, want)
		}
	}
}

// verifyUnit runs systemd-analyze verify on the installed unit (it needs
// the installed binary and man page), when systemd-analyze is installed.
func verifyUnit(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Log("systemd-analyze is not installed: the unit is not verified")
		return
	}
	run(t, "systemd-analyze", "verify", "/lib/systemd/system/usher.service")
}

// runInstalled runs the installed agent on the installed configuration as
// the usher user, as the unit does, on free loopback ports: it must read
// the configuration, write its data directory, tell a notify socket
// READY=1, and STOPPING=1 and exit 0 at SIGTERM.
func runInstalled(t *testing.T) {
	t.Helper()
	u, err := user.Lookup("usher")
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	notify := notifySocket(t)

	cmd := exec.Command("/usr/bin/usher", "agent", "-config", "/etc/usher/usher.hcl",
		"-bind", "127.0.0.1:0", "-session-addr", "127.0.0.1:0", "-vip", "127.0.0.1:0", "-http", "")
	cmd.Dir = "/"
	cmd.Env = []string{"NOTIFY_SOCKET=" + notify.LocalAddr().String(), "PATH=/usr/bin:/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		cmd.Process.Kill()
		<-exited
	}()

	expectNotice(t, notify, "READY=1", 30*time.Second, &logs)
	cmd.Process.Signal(syscall.SIGTERM)
	expectNotice(t, notify, "STOPPING=1", 10*time.Second, &logs)
	select {
	case err := <-exited:
		exited <- err // for the deferred wait
		if err != nil {
			t.Fatalf("the agent exited with %v:\n%s", err, logs.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("the agent did not exit after SIGTERM:\n%s", logs.String())
	}
}

// notifySocket stands in for systemd's notify socket: a datagram socket
// the usher user may send to.
func notifySocket(t *testing.T) *net.UnixConn {
	t.Helper()
	dir, err := os.MkdirTemp("", "usher-notify-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	for _, p := range []string{dir, path} {
		if err := os.Chmod(p, 0o777); err != nil {
			t.Fatal(err)
		}
	}
	return conn
}

// expectNotice fails t unless the socket receives a datagram starting
// with want within wait; others (none are expected) are skipped.
func expectNotice(t *testing.T, conn *net.UnixConn, want string, wait time.Duration, logs *bytes.Buffer) {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 512)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("waiting for %s: %v\nthe agent's log:\n%s", want, err, logs.String())
		}
		if strings.HasPrefix(string(buf[:n]), want) {
			return
		}
	}
}

// purge removes the package, and the usher user and group if the test
// made them, leaving the machine as it was.
func purge(t *testing.T, hadUser bool) {
	t.Helper()
	run(t, "dpkg", "--purge", "usher")
	for _, path := range []string{"/usr/bin/usher", "/lib/systemd/system/usher.service", "/etc/usher", "/var/lib/usher"} {
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s is still there after the purge (%v)", path, err)
		}
	}
	if !hadUser {
		run(t, "userdel", "usher")
		exec.Command("groupdel", "usher").Run() // userdel removes it already when USERGROUPS_ENAB is set
	}
}

// run runs a command and returns its standard output, failing t with its
// output when it fails.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}
