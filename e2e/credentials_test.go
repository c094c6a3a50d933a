//go:build linux

package e2e

import (
	"testing"

	"github.com/usherlb/usher/internal/farm"
)

// e2eFarm is the farm name (label) of the chaos farms.
const e2eFarm = "usher-e2e"

// chaosCredentials are the credentials of a chaos farm in dir, made with
// the binary's own commands (`usher tls`, `usher keygen`), as an operator
// makes them.
func chaosCredentials(bin, dir string) farm.Credentials {
	return farm.Credentials{Dir: dir, Label: e2eFarm, Issuer: farm.CLI{Bin: bin}}
}

// farmCredentials makes what a farm of several voters needs to start, a
// farm CA, a certificate per node and a gossip key, all in dir, and
// returns each node's flags giving it its credentials.
func farmCredentials(t *testing.T, bin, dir string, nodes []string) map[string][]string {
	t.Helper()
	c := chaosCredentials(bin, dir)
	creds := make(map[string][]string, len(nodes))
	for _, n := range nodes {
		args, err := c.Args(n)
		if err != nil {
			t.Fatal(err)
		}
		creds[n] = args
	}
	return creds
}

// farmCAFile is where farmCredentials writes the farm CA's certificate.
func farmCAFile(dir string) string { return chaosCredentials("", dir).CAFile() }
