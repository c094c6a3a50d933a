package panic

import "testing"

func TestPanics(t *testing.T) {
	go func() { panic("panics on purpose, outside the test goroutine") }()
	select {}
}
