package main

import "testing"

func TestSpread(t *testing.T) {
	tests := []struct {
		name             string
		s                spread
		min, median, max float64
		text             string
	}{
		{"empty", nil, 0, 0, 0, "n/a"},
		{"one", spread{2}, 2, 2, 2, "2.0 (2.0–2.0)"},
		{"odd", spread{3, 1, 2}, 1, 2, 3, "2.0 (1.0–3.0)"},
		{"even", spread{4, 1, 3, 2}, 1, 2.5, 4, "2.5 (1.0–4.0)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.s.min() != tt.min || tt.s.median() != tt.median || tt.s.max() != tt.max {
				t.Errorf("min/median/max = %v/%v/%v", tt.s.min(), tt.s.median(), tt.s.max())
			}
			if got := tt.s.format("%.1f"); got != tt.text {
				t.Errorf("format = %q, want %q", got, tt.text)
			}
		})
	}
	if r := ratios(spread{2, 3, 4}, spread{1, 0, 2}); len(r) != 2 || r[0] != 2 || r[1] != 2 {
		t.Errorf("ratios = %v", r)
	}
}
