package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/usherlb/usher/node"
)

// hclBlock matches a fenced HCL example in Markdown: a whole configuration.
// A fragment (a block shown alone, alternatives side by side) is fenced as
// "```hcl fragment" and not matched.
var hclBlock = regexp.MustCompile("(?s)```hcl\n(.*?)```")

// TestDocExamplesValidate checks that every HCL example of the README and
// docs/ passes `usher validate` as written, once the files it names exist:
// the credentials are made here with usher's own commands, and the paths
// under /etc/usher and /var/lib/usher are moved into a temporary directory.
func TestDocExamplesValidate(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"tls", "ca", "create", "-farm", "media-prod", "-dir", dir},
		{"tls", "cert", "create", "-node", "media-07", "-dir", dir},
	} {
		if code, _, errOut := runArgs(context.Background(), args...); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errOut)
		}
	}
	_, key, _ := runArgs(context.Background(), "keygen")
	cert, _ := os.ReadFile(filepath.Join(dir, "usher-media-prod-media-07.pem"))
	certKey, _ := os.ReadFile(filepath.Join(dir, "usher-media-prod-media-07-key.pem"))
	for name, content := range map[string]string{
		"gossip.key":  key,
		"turn-secret": "a-shared-secret-of-coturn",
		"vip.pem":     string(cert), // any certificate and key make a pair
		"vip-key.pem": string(certKey),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	docs, _ := filepath.Glob("../../docs/*.md")
	checked := 0
	for _, doc := range append([]string{"../../README.md"}, docs...) {
		src, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for i, m := range hclBlock.FindAllStringSubmatch(string(src), -1) {
			ex := strings.NewReplacer("/etc/usher/", dir+"/", "/var/lib/usher", filepath.Join(dir, "data")).Replace(m[1])
			path := filepath.Join(dir, filepath.Base(doc)+"-"+string(rune('a'+i))+".hcl")
			if err := os.WriteFile(path, []byte(ex), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := node.CheckConfigFile(path); err != nil {
				t.Errorf("%s, HCL example %d:\n%s\nfails usher validate:\n%v", doc, i+1, m[1], err)
			}
			checked++
		}
	}
	if checked < 3 {
		t.Errorf("found %d HCL examples; the README alone has more", checked)
	}
}
