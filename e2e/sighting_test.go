package e2e

import (
	"reflect"
	"testing"
	"time"
)

// seen is a sighting of node in term, sent and received at the given
// milliseconds.
func seen(node string, term uint64, sent, recv int) Sighting {
	return Sighting{Node: node, Term: term, Sent: time.Duration(sent) * time.Millisecond, Recv: time.Duration(recv) * time.Millisecond}
}

func TestStaleServing(t *testing.T) {
	tests := []struct {
		name string
		in   []Sighting
		bad  [][2]Sighting
		late int
	}{
		{name: "empty"},
		{name: "one term", in: []Sighting{seen("", 3, 0, 1), seen("", 3, 5, 6)}},
		{name: "clean handover", in: []Sighting{seen("", 3, 0, 1), seen("", 4, 10, 11), seen("", 4, 20, 21)}},
		{
			name: "old term answers a probe sent after the new term answered",
			in:   []Sighting{seen("", 3, 0, 1), seen("", 4, 10, 11), seen("", 3, 20, 21)},
			bad:  [][2]Sighting{{seen("", 4, 10, 11), seen("", 3, 20, 21)}},
		},
		{
			name: "two leaders alternate",
			in:   []Sighting{seen("", 4, 0, 1), seen("", 5, 5, 6), seen("", 4, 10, 11), seen("", 5, 15, 16), seen("", 4, 20, 21)},
			bad: [][2]Sighting{
				{seen("", 5, 5, 6), seen("", 4, 10, 11)},
				{seen("", 5, 15, 16), seen("", 4, 20, 21)},
			},
		},
		{
			name: "the newest term received before is the one named",
			in:   []Sighting{seen("", 5, 0, 1), seen("", 4, 2, 3), seen("", 3, 10, 11)},
			bad: [][2]Sighting{
				{seen("", 5, 0, 1), seen("", 4, 2, 3)},
				{seen("", 5, 0, 1), seen("", 3, 10, 11)},
			},
		},
		{
			name: "old answer delivered late is counted, not flagged",
			in:   []Sighting{seen("", 3, 0, 1), seen("", 4, 10, 11), seen("", 3, 5, 30)},
			late: 1,
		},
		{
			name: "sent exactly when the newer one arrived proves nothing",
			in:   []Sighting{seen("", 4, 0, 10), seen("", 3, 10, 12)},
			late: 1,
		},
		{
			name: "input order does not matter",
			in:   []Sighting{seen("", 3, 20, 21), seen("", 4, 10, 11)},
			bad:  [][2]Sighting{{seen("", 4, 10, 11), seen("", 3, 20, 21)}},
		},
		{
			name: "a status poll of a woken leader after the new leader's answer",
			in:   []Sighting{seen("h1", 3, 0, 1), seen("", 4, 400, 401), seen("h1", 3, 2000, 2001)},
			bad:  [][2]Sighting{{seen("", 4, 400, 401), seen("h1", 3, 2000, 2001)}},
		},
		{
			name: "a poll that hung over the handover is only late",
			in:   []Sighting{seen("h2", 4, 400, 401), seen("h1", 3, 300, 2001)},
			late: 1,
		},
		{
			name: "term 0 proves nothing",
			in:   []Sighting{seen("", 4, 0, 1), seen("", 0, 10, 11)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad, late := StaleServing(tt.in)
			if !reflect.DeepEqual(bad, tt.bad) || late != tt.late {
				t.Errorf("StaleServing = %v, %d late; want %v, %d late", bad, late, tt.bad, tt.late)
			}
		})
	}
}

func TestSharedTerms(t *testing.T) {
	tests := []struct {
		name string
		in   []Sighting
		want [][2]Sighting
	}{
		{name: "one node per term", in: []Sighting{seen("h1", 3, 0, 1), seen("h1", 3, 5, 6), seen("h2", 4, 10, 11)}},
		{
			name: "two nodes in one term, however far apart",
			in:   []Sighting{seen("h1", 3, 0, 1), seen("h2", 3, 5000, 5001), seen("h3", 3, 6000, 6001)},
			want: [][2]Sighting{{seen("h1", 3, 0, 1), seen("h2", 3, 5000, 5001)}},
		},
		{name: "answers at the VIP name nobody", in: []Sighting{seen("h1", 3, 0, 1), seen("", 3, 5, 6)}},
		{name: "term 0 is no term", in: []Sighting{seen("h1", 0, 0, 1), seen("h2", 0, 5, 6)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := SharedTerms(tt.in); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("SharedTerms = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestServed(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	in := []Sighting{
		seen("h1", 3, 0, 100),   // before the cut
		seen("h1", 3, 100, 160), // straddles the lease's end: may be before it
		seen("h1", 3, 150, 151), // sent at the lease's end: past it
		seen("", 3, 200, 201),   // the VIP's answer in the same term
		seen("h2", 4, 400, 401), // the next leader
		seen("", 0, 300, 301),   // a stock answer: no term
	}
	tests := []struct {
		name     string
		term     uint64
		from, to time.Duration
		want     []Sighting
	}{
		{"past the lease", 3, ms(150), 0, []Sighting{in[2], in[3]}},
		{"any term in a window", 0, ms(150), ms(400), []Sighting{in[2], in[3], in[5]}},
		{"received at the window's end is outside", 0, ms(300), ms(301), nil},
		{"nothing after", 4, ms(500), 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Served(in, tt.term, tt.from, tt.to); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Served(%d, %v, %v) = %v, want %v", tt.term, tt.from, tt.to, got, tt.want)
			}
		})
	}
}
