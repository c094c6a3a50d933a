package main

import (
	"os"
	"regexp"
	"slices"
	"testing"
)

// TestManPageCommands holds the man page the package installs
// (packaging/usher.1) against the commands `usher -h` lists: the same
// commands, in the same order.
func TestManPageCommands(t *testing.T) {
	page, err := os.ReadFile("../../packaging/usher.1")
	if err != nil {
		t.Fatal(err)
	}
	// Each command is a tagged paragraph: ".TP" then ".B name".
	var listed []string
	for _, m := range regexp.MustCompile(`(?m)^\.TP\n\.B ([a-z-]+)$`).FindAllSubmatch(page, -1) {
		listed = append(listed, string(m[1]))
	}
	var want []string
	for _, c := range commands {
		want = append(want, c.name)
	}
	if !slices.Equal(listed, want) {
		t.Errorf("usher.1 lists the commands %v, usher -h %v", listed, want)
	}
}
