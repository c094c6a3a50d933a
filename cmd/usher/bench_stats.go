package main

import (
	"fmt"
	"slices"
)

// spread is a set of repeated measurements of one figure.
type spread []float64

// min, median and max of the measurements; zero for none.
func (s spread) min() float64 {
	if len(s) == 0 {
		return 0
	}
	return slices.Min(s)
}

func (s spread) max() float64 {
	if len(s) == 0 {
		return 0
	}
	return slices.Max(s)
}

func (s spread) median() float64 {
	if len(s) == 0 {
		return 0
	}
	c := slices.Clone(s)
	slices.Sort(c)
	if len(c)%2 == 1 {
		return c[len(c)/2]
	}
	return (c[len(c)/2-1] + c[len(c)/2]) / 2
}

// format writes the spread as "median (min–max)" with verb for each value.
func (s spread) format(verb string) string {
	if len(s) == 0 {
		return "n/a"
	}
	return fmt.Sprintf(verb+" ("+verb+"–"+verb+")", s.median(), s.min(), s.max())
}

// ratios divides each of ours by the baseline measured next to it.
func ratios(ours, base spread) spread {
	var r spread
	for i := range min(len(ours), len(base)) {
		if base[i] != 0 {
			r = append(r, ours[i]/base[i])
		}
	}
	return r
}
