package farm

import "testing"

func TestPortPicker(t *testing.T) {
	pp := &PortPicker{next: 20008, lo: 20000, hi: 20009}
	busy := map[uint16]bool{20000: true}
	got := map[uint16]bool{}
	for range 4 {
		p, err := pp.Take(2, func(p uint16) bool { return !busy[p] })
		if err != nil {
			t.Fatal(err)
		}
		if got[p] || got[p+1] || p < 20000 || p+1 > 20009 || busy[p] {
			t.Fatalf("port %d handed out twice, busy or past the range (so far %v)", p, got)
		}
		got[p], got[p+1] = true, true
	}
	if _, err := pp.Take(1, func(uint16) bool { return false }); err == nil {
		t.Error("Take succeeded with no free port")
	}
}
