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
// members. Like the metadata, it is as trustworthy as memberlist's
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

// decodeReportMsg parses a report message.
func decodeReportMsg(b []byte) (name string, r Report, err error) {
	if len(b) < 2 || b[0] != msgReport {
		return "", Report{}, fmt.Errorf("%w: not a report message", ErrBadReport)
	}
	n := int(b[1])
	if n == 0 || len(b) < 2+n {
		return "", Report{}, fmt.Errorf("%w: truncated report message", ErrBadReport)
	}
	r, err = DecodeReport(b[2+n:])
	if err != nil {
		return "", Report{}, err
	}
	return string(b[2 : 2+n]), r, nil
}
