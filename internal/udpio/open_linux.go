//go:build linux

package udpio

import (
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Open returns a Conn reading and writing conn with the back-end m.
func Open(conn *net.UDPConn, m Mode) (Conn, error) {
	switch m {
	case Raw:
		return newRawConn(conn)
	case MMsg:
		return newMMsgConn(conn)
	}
	return netConn{conn}, nil
}

// yieldAfter is how many datagrams a raw back-end reads while the socket
// never runs dry before it yields (see sock.pace).
const yieldAfter = MaxBatch

// sock is what the raw back-ends share: the socket, its family, and how
// long it has been since the socket was last found empty.
type sock struct {
	rc    syscall.RawConn
	inet6 bool // the socket is AF_INET6: destinations are written as IPv6

	streak int    // datagrams read since the socket was last found empty
	busy   bool   // counted in busyLoops: the last read did not find it empty
	always bool   // yield after every yieldAfter, whatever the other loops do
	yield  func() // runtime.Gosched; tests count the calls (export_test.go)
}

// newSock prepares raw system calls on conn.
func newSock(conn *net.UDPConn) (sock, error) {
	rc, err := conn.SyscallConn()
	if err != nil {
		return sock{}, fmt.Errorf("udpio: %w", err)
	}
	var family int
	var serr error
	if err := rc.Control(func(fd uintptr) {
		family, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_DOMAIN)
	}); err != nil {
		return sock{}, fmt.Errorf("udpio: %w", err)
	}
	if serr != nil {
		return sock{}, fmt.Errorf("udpio: socket family: %w", serr)
	}
	return sock{rc: rc, inet6: family == unix.AF_INET6, yield: runtime.Gosched}, nil
}

// pace yields the processor when the last reads took yieldAfter datagrams
// or more without finding the socket empty: a goroutine looping over raw
// system calls never hands its processor over at them (see rawSyscall6),
// so flooded loops could otherwise hold every processor until the
// scheduler preempts them, up to 10 ms later, while raft and memberlist
// wait.
//
// A Raw loop yields only while as many loops as there are processors are
// flooded. With a processor left that no flooded loop holds, the others
// run there, and a yield would only cost: it wakes an idle thread to look
// for the yielded goroutine, which often resumes on that thread. Yielding
// so, the responder on one socket, flooded, had its process switch
// context about twice as often as a plain echo's and change CPUs some
// hundreds of times a second, and its tail at half load was the longer
// for it. An MMsg loop (always) yields after every full batch regardless,
// as before: the batched responder, one loop per processor, did as well
// or better so in paired runs (docs/bench/history.md has both).
func (s *sock) pace() {
	if s.streak >= yieldAfter {
		s.streak = 0
		if s.always || int(busyLoops.Load()) >= runtime.GOMAXPROCS(0) {
			s.yield()
		}
	}
}

// busyLoops counts the raw back-ends whose last read found their socket
// not empty: the serving loops that may be holding a processor.
var busyLoops atomic.Int32

// read counts n datagrams read; drained says the read found the socket
// empty (or may have). A read of nothing (an error) counts as drained:
// its loop is not holding the processor over datagrams.
func (s *sock) read(n int, drained bool) {
	busy := n > 0 && !drained
	switch {
	case busy && !s.busy:
		busyLoops.Add(1)
	case !busy && s.busy:
		busyLoops.Add(-1)
	}
	s.busy = busy
	if !busy {
		s.streak = 0
		return
	}
	s.streak += n
}

// sockaddr holds a struct sockaddr_in or sockaddr_in6.
type sockaddr [unix.SizeofSockaddrInet6]byte

// addrPort returns the address in sa, IPv4-mapped addresses unmapped; the
// zero value for a family it does not know.
func (sa *sockaddr) addrPort() netip.AddrPort {
	port := uint16(sa[2])<<8 | uint16(sa[3])
	switch *(*uint16)(unsafe.Pointer(&sa[0])) {
	case unix.AF_INET:
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(sa[4:8])), port)
	case unix.AF_INET6:
		return netip.AddrPortFrom(netip.AddrFrom16([16]byte(sa[8:24])).Unmap(), port)
	}
	return netip.AddrPort{}
}

// put writes ap into sa for a socket of the family inet6 says and returns
// its length; false if that socket cannot reach ap (an IPv6 address on an
// IPv4 socket).
func (sa *sockaddr) put(ap netip.AddrPort, inet6 bool) (uint32, bool) {
	*sa = sockaddr{}
	port := ap.Port()
	ip := ap.Addr()
	if inet6 {
		*(*uint16)(unsafe.Pointer(&sa[0])) = unix.AF_INET6
		sa[2], sa[3] = byte(port>>8), byte(port)
		a16 := ip.As16()
		copy(sa[8:24], a16[:])
		return unix.SizeofSockaddrInet6, true
	}
	if !ip.Unmap().Is4() {
		return 0, false
	}
	*(*uint16)(unsafe.Pointer(&sa[0])) = unix.AF_INET
	sa[2], sa[3] = byte(port>>8), byte(port)
	a4 := ip.Unmap().As4()
	copy(sa[4:8], a4[:])
	return unix.SizeofSockaddrInet4, true
}

// bufPtr returns the address of b's first byte for a system call, or 0
// for an empty b.
func bufPtr(b []byte) uintptr {
	if len(b) == 0 {
		return 0
	}
	return uintptr(unsafe.Pointer(&b[0]))
}
