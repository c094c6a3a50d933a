package main

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
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

// MarshalJSON writes the measurements as a JSON array, with the values
// JSON has no number for (NaN, ±Inf, which a division by a zero
// measurement gives) as the strings "NaN", "+Inf" and "-Inf".
func (s spread) MarshalJSON() ([]byte, error) { //nolint:unparam // json.Marshaler's signature
	if s == nil {
		return []byte("null"), nil
	}
	b := []byte{'['}
	for i, v := range s {
		if i > 0 {
			b = append(b, ',')
		}
		switch {
		case math.IsNaN(v) || math.IsInf(v, 0):
			b = strconv.AppendQuote(b, strconv.FormatFloat(v, 'g', -1, 64))
		default:
			b = strconv.AppendFloat(b, v, 'g', -1, 64)
		}
	}
	return append(b, ']'), nil
}

// UnmarshalJSON reads what MarshalJSON writes.
func (s *spread) UnmarshalJSON(b []byte) error {
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	if raw == nil {
		*s = nil
		return nil
	}
	out := make(spread, len(raw))
	for i, r := range raw {
		if len(r) > 0 && r[0] == '"' {
			var str string
			if err := json.Unmarshal(r, &str); err != nil {
				return err
			}
			v, err := strconv.ParseFloat(str, 64)
			if err != nil || !(math.IsNaN(v) || math.IsInf(v, 0)) {
				return fmt.Errorf("spread: %q is not NaN or an infinity", str)
			}
			out[i] = v
			continue
		}
		if err := json.Unmarshal(r, &out[i]); err != nil {
			return err
		}
	}
	*s = out
	return nil
}
