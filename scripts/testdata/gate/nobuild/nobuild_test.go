package nobuild

import "testing"

func TestDoesNotBuild(t *testing.T) { undefined() }
