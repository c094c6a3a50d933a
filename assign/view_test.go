package assign

import (
	"testing"
)

func TestNewViewSortsCopiesAndDedupes(t *testing.T) {
	in := []Node{
		{ID: "c", Sessions: 3},
		{ID: "a", Sessions: 1},
		{ID: "b", Sessions: 2},
		{ID: "a", Sessions: 9}, // duplicate: the later one wins
	}
	v := NewView(in)
	in[1].ID = "zzz" // the view must not alias the input
	got := v.Nodes()
	want := []struct {
		id       string
		sessions int
	}{{"a", 9}, {"b", 2}, {"c", 3}}
	if v.Len() != len(want) || len(got) != len(want) {
		t.Fatalf("Len = %d, len(Nodes) = %d, want %d", v.Len(), len(got), len(want))
	}
	for i, w := range want {
		if got[i].ID != w.id || got[i].Sessions != w.sessions {
			t.Errorf("node %d = %s/%d, want %s/%d", i, got[i].ID, got[i].Sessions, w.id, w.sessions)
		}
	}
	if n, ok := v.Lookup("b"); !ok || n.Sessions != 2 {
		t.Errorf("Lookup(b) = %+v, %v", n, ok)
	}
	if _, ok := v.Lookup("zzz"); ok {
		t.Error("Lookup found a node that is not in the view")
	}
}

func TestNilAndEmptyView(t *testing.T) {
	for name, v := range map[string]*View{"nil": nil, "empty": NewView(nil)} {
		if v.Len() != 0 || len(v.Nodes()) != 0 {
			t.Errorf("%s view: Len %d, Nodes %v", name, v.Len(), v.Nodes())
		}
		if _, ok := v.Lookup("a"); ok {
			t.Errorf("%s view: Lookup found something", name)
		}
	}
}
