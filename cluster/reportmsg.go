package cluster

import (
	"fmt"
)

// A report message is a node's report sent straight to a voter as a
// memberlist user message (see publisher):
//
//	kind (1 byte, msgReport) | name length (1 byte) | name | EncodeReport(r)
//
// memberlist does not tell the receiver who sent a user message, so the
// sender names itself; the receiver takes the report only for a member it
// already knows alive (reportMsg's caller checks), so a message cannot add
// members. With Config.TLS set, a signature trailer of the named node's
// certificate key follows (sign.go) and the receiver takes the report only
// if it verifies; without, a report is as trustworthy as memberlist's
// transport: set an encryption key on untrusted networks.
const msgReport = 1

// appendReportMsg appends the report message of node name carrying r to dst.
func appendReportMsg(dst []byte, name string, r Report) ([]byte, error) {
	if len(name) == 0 || len(name) > maxNodeNameLen {
		return dst, fmt.Errorf("node name of %d bytes", len(name))
	}
	enc, err := EncodeReport(r)
	if err != nil {
		return dst, err
	}
	dst = append(dst, msgReport, byte(len(name)))
	dst = append(dst, name...)
	return append(dst, enc...), nil
}

// decodeReportMsg parses a report message without a trailer.
func decodeReportMsg(b []byte) (name string, r Report, err error) {
	name, r, rest, err := decodeSignedReportMsg(b)
	if err == nil && len(rest) != 0 {
		return "", Report{}, fmt.Errorf("%w: %d trailing bytes", ErrBadReport, len(rest))
	}
	return name, r, err
}

// decodeSignedReportMsg parses a report message and returns what follows
// it: the signature trailer, if any.
func decodeSignedReportMsg(b []byte) (name string, r Report, trailer []byte, err error) {
	if len(b) < 2 || b[0] != msgReport {
		return "", Report{}, nil, fmt.Errorf("%w: not a report message", ErrBadReport)
	}
	n := int(b[1])
	if n == 0 || len(b) < 2+n {
		return "", Report{}, nil, fmt.Errorf("%w: truncated report message", ErrBadReport)
	}
	r, trailer, err = decodeReport(b[2+n:])
	if err != nil {
		return "", Report{}, nil, err
	}
	return string(b[2 : 2+n]), r, trailer, nil
}
