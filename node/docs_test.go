package node

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestDocsHCLParses parses every HCL example of the README and the docs
// that configures services or strict mode, so the examples users copy
// are ones the agent takes.
func TestDocsHCLParses(t *testing.T) {
	block := regexp.MustCompile("(?s)```hcl(?: fragment)?\n(.*?)```")
	n := 0
	for _, path := range []string{"../README.md", "../docs/turn.md", "../docs/load-sources.md"} {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range block.FindAllSubmatch(b, -1) {
			src := string(m[1])
			if !strings.Contains(src, "service \"") && !strings.Contains(src, "turn_auth") {
				continue
			}
			n++
			if _, err := ParseConfig([]byte(src), path+".hcl"); err != nil {
				t.Errorf("%s: an example does not parse: %v\n%s", path, err, src)
			}
		}
	}
	if n < 3 {
		t.Errorf("found %d service examples, want at least 3", n)
	}
}
