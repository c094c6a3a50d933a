//go:build linux

package e2e

import (
	"net"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// proberNice is the nice value of the prober's sending and reading
// threads, and of a watch process's (TestHelperWatch): the agents' in the
// busy scenarios (the packaged unit's). In the namespace farm the client
// host shares the machine's cores with the server hosts' neighbours,
// where a real client would run elsewhere. The prober times failovers,
// hundreds of milliseconds; the busy-host watches, whose gaps are tens,
// probe from a process of their own, since in the test process the
// prober still waited for its runtime now and then.
const proberNice = packagedNice

// lockNiced locks the calling goroutine to its thread for the rest of the
// goroutine's life (the thread ends with it) and gives the thread nice
// value n. Without the privilege to raise its priority the thread keeps
// its own, and the prober still runs.
func lockNiced(n int) {
	runtime.LockOSThread()
	_ = unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), n)
}

// sleepUntil sleeps the calling thread until the Monotonic instant at, in
// the kernel, so that a thread locked by lockNiced is woken at its own
// priority rather than by one of the runtime's timer threads.
func sleepUntil(at time.Duration) {
	ts := unix.NsecToTimespec(int64(at))
	for unix.ClockNanosleep(unix.CLOCK_MONOTONIC, unix.TIMER_ABSTIME, &ts, nil) == unix.EINTR {
	}
}

// readPolled calls handle with every datagram c receives, and the
// Monotonic instant it was read at, until stop is closed, waiting in
// poll(2) on the calling thread rather than in the runtime's poller, for
// the same reason as sleepUntil. It holds the socket open while it runs:
// c.Close waits until it has seen stop and returned, within readStopEvery.
func readPolled(c *net.UDPConn, stop <-chan struct{}, buf []byte, handle func(b []byte, at time.Duration)) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	return rc.Control(func(fd uintptr) {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		for {
			select {
			case <-stop:
				return
			default:
			}
			if n, err := unix.Poll(fds, int(readStopEvery/time.Millisecond)); n <= 0 || err != nil {
				continue // timeout, EINTR
			}
			for {
				n, _, err := unix.Recvfrom(int(fd), buf, unix.MSG_DONTWAIT)
				if err != nil && !recvAgain(err) {
					break // drained (EAGAIN), or failing: poll again
				}
				if err == nil {
					handle(buf[:n], Monotonic())
				}
			}
		}
	})
}

// recvAgain reports whether a failed recvfrom may be followed at once by
// another: an ICMP error surfaced on the socket (reported once each) or an
// interrupted call. Any other error, EAGAIN included, ends a drain, so a
// socket that keeps failing cannot spin its reader.
func recvAgain(err error) bool {
	switch err {
	case unix.ECONNREFUSED, unix.EHOSTUNREACH, unix.ENETUNREACH, unix.EINTR:
		return true
	}
	return false
}

// readStopEvery is how often readPolled looks at its stop channel.
const readStopEvery = 50 * time.Millisecond
