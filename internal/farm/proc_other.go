//go:build !linux

package farm

import "syscall"

// procAttr returns the defaults: the launcher kills its agents by PID on
// every exit path it controls.
func procAttr() *syscall.SysProcAttr { return nil }
