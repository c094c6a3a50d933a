package main

import (
	"context"
	"fmt"
	"io"
)

func notYet(name string, stderr io.Writer) int {
	fmt.Fprintf(stderr, "usher %s: not implemented yet\n", name)
	return 1
}

func runMembers(_ context.Context, _ []string, _, stderr io.Writer) int {
	return notYet("members", stderr)
}
func runStatus(_ context.Context, _ []string, _, stderr io.Writer) int {
	return notYet("status", stderr)
}
func runDrain(_ context.Context, _ []string, _, stderr io.Writer) int { return notYet("drain", stderr) }
func runUndrain(_ context.Context, _ []string, _, stderr io.Writer) int {
	return notYet("undrain", stderr)
}
func runLeave(_ context.Context, _ []string, _, stderr io.Writer) int { return notYet("leave", stderr) }
func runKeygen(_ context.Context, _ []string, _, stderr io.Writer) int {
	return notYet("keygen", stderr)
}
