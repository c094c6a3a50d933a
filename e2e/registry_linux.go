//go:build linux

package e2e

import (
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// live holds every farm not yet closed and every process set of a farm or
// loop farm, so an interrupt can tear everything down.
var live = struct {
	sync.Mutex
	farms map[*Farm]struct{}
	sets  map[*procSet]struct{}
}{farms: make(map[*Farm]struct{}), sets: map[*procSet]struct{}{looseProcs: {}}}

// looseProcs holds processes started on hosts that belong to no farm (a
// Host built by hand); it is never unregistered.
var looseProcs = newProcSet()

func register(f *Farm) {
	live.Lock()
	live.farms[f] = struct{}{}
	live.Unlock()
}

func unregister(f *Farm) {
	live.Lock()
	delete(live.farms, f)
	live.Unlock()
}

func registerSet(s *procSet) {
	live.Lock()
	live.sets[s] = struct{}{}
	live.Unlock()
}

func unregisterSet(s *procSet) {
	live.Lock()
	delete(live.sets, s)
	live.Unlock()
}

// teardownAll kills every process the harness started and closes every live
// farm.
func teardownAll() {
	live.Lock()
	sets := make([]*procSet, 0, len(live.sets))
	for s := range live.sets {
		sets = append(sets, s)
	}
	farms := make([]*Farm, 0, len(live.farms))
	for f := range live.farms {
		farms = append(farms, f)
	}
	live.Unlock()
	for _, s := range sets {
		s.killAll()
	}
	for _, f := range farms {
		if err := f.Close(); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: closing farm on interrupt: %v\n", err)
		}
	}
}

// CatchInterrupts installs a SIGINT/SIGTERM handler that kills every process
// the harness started, deletes every farm namespace, and exits with status
// 128+signal. Call it first thing in TestMain; call the returned stop before
// exiting (it is idempotent) to remove the handler and end its goroutine.
// Without it an interrupted run leaves namespaces behind until the next
// run's stale sweep (processes die with the test process either way: they
// are started with a parent-death signal).
func CatchInterrupts() (stop func()) {
	sigs := make(chan os.Signal, 1)
	quit := make(chan struct{})
	finished := make(chan struct{})
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		defer close(finished)
		select {
		case sig := <-sigs:
			fmt.Fprintf(os.Stderr, "e2e: %v: tearing down farms and processes\n", sig)
			teardownAll()
			code := 1
			if s, ok := sig.(syscall.Signal); ok {
				code = 128 + int(s)
			}
			os.Exit(code)
		case <-quit:
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			signal.Stop(sigs)
			close(quit)
			<-finished
		})
	}
}
