//go:build linux

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// encodeResults returns rep as the JSON `usher-bench` saves next to its
// report.
func encodeResults(rep *benchReport) ([]byte, error) {
	raw, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode results: %w", err)
	}
	return append(raw, '\n'), nil
}

// decodeResults reads results saved by encodeResults. It refuses a field
// it does not know and another schema, either of which would render a
// report that misstates the run.
func decodeResults(raw []byte) (*benchReport, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var rep benchReport
	if err := dec.Decode(&rep); err != nil {
		return nil, fmt.Errorf("decode results: %w", err)
	}
	if rep.Schema != resultsSchema {
		return nil, fmt.Errorf("decode results: schema %d, want %d", rep.Schema, resultsSchema)
	}
	return &rep, nil
}
