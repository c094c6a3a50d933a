package main

import (
	"os"
	"testing"

	"github.com/usherlb/usher/internal/farm"
)

// TestFarmCredentialsCLI makes a farm's credentials with internal/farm's
// CLI issuer, that is with `usher tls ca create`, `usher tls cert create`
// and `usher keygen` run as separate processes as an operator runs them,
// and checks that every node's files are what an agent of the farm loads.
// The e2e chaos farms start their agents with credentials made this way.
func TestFarmCredentialsCLI(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Skip(err)
	}
	t.Setenv(asUsherEnv, "1")
	c := farm.Credentials{Dir: t.TempDir(), Label: "usher-e2e", Issuer: farm.CLI{Bin: exe}}
	for _, n := range []string{"h1", "h2"} {
		creds, err := c.Args(n)
		if err != nil {
			t.Fatal(err)
		}
		spec := farm.AgentSpec{
			Addrs:   farm.Addrs{Name: n, Gossip: farm.Loopback(7946), Session: farm.Loopback(3479), HTTP: farm.Loopback(7480)},
			VIP:     farm.Loopback(3478),
			Expect:  3,
			DataDir: t.TempDir(),
			Extra:   creds,
		}
		if err := farm.CheckArgs(spec.Args()); err != nil {
			t.Errorf("%s: %v", n, err)
		}
	}
	if _, err := (farm.Credentials{Dir: t.TempDir(), Label: "a b", Issuer: farm.CLI{Bin: exe}}).Args("h1"); err == nil {
		t.Error("usher tls ca create took an invalid farm name")
	}
}
