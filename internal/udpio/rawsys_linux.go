//go:build linux

package udpio

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// rawSyscall6 makes one of the raw back-ends' socket calls (recvfrom,
// sendto, recvmmsg, sendmmsg), always with MSG_DONTWAIT, without telling
// the Go scheduler that the goroutine enters a system call.
//
// A call that cannot block needs none of that bookkeeping, and on the
// probe path it is not cheap. In paired saturation runs on a 2-core
// machine (TestBenchPairs of the benchmark harness, 16 interleaved
// repeats, 2026-11-27) the unbatched responder went from 1.21x the plain
// echo's CPU per answer with ordinary calls to 1.09x with raw ones
// (probes/s from 0.86x to 1.01x), and the batched one from 1.12x to 0.89x
// of the batched echo's (probes/s from 0.92x to 1.06x); the echoes pay the
// bookkeeping through the net package. The bookkeeping is the runtime's
// entersyscall/exitsyscall pair on every call and, when its monitor finds
// a goroutine some tens of microseconds into a call while no processor is
// idle (a sendmmsg of 64 answers on loopback delivers all of them before
// it returns), a hand-off of the processor to another thread and back;
// how the saving splits between the two was not measured.
//
// The price is that a goroutine looping over raw calls never hands its
// processor over at them, so a flood of datagrams could hold every
// processor the agent has (one serving goroutine per SO_REUSEPORT socket)
// until the scheduler preempts one, up to 10 ms later. The raw back-ends
// therefore yield after every MaxBatch datagrams read without the socket
// running dry (see sock.pace).
//
//nolint:unparam // the arguments of unix.RawSyscall6, whatever its callers pass today
func rawSyscall6(trap, a1, a2, a3, a4, a5, a6 uintptr) (r1, r2 uintptr, err syscall.Errno) {
	return unix.RawSyscall6(trap, a1, a2, a3, a4, a5, a6)
}
