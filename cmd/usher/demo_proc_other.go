//go:build !linux

package main

import "syscall"

// demoProcAttr returns the defaults: the demo kills its agents by PID on
// every exit path it controls.
func demoProcAttr() *syscall.SysProcAttr { return nil }
