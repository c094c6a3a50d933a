// Package pki makes and checks the certificates that authenticate the
// members of an Usher farm to each other (Raft over mutual TLS).
//
// A farm has one certificate authority (CA), a self-signed certificate
// naming the farm. Every node holds a certificate of that CA naming both the
// node and the farm, so that a certificate of one farm is never accepted by
// another even if both were signed by the same key. The identity is carried
// in one URI subject alternative name:
//
//	usher://<farm>/node/<node>     a node's certificate
//	usher://<farm>                 the CA's certificate
//
// The node name is path-escaped (url.PathEscape), so any node name fits.
// The farm name must be a host name of letters, digits, '-', '_' and '.'
// (ValidFarm), since crypto/x509 refuses a URI whose host is not a domain.
// A node certificate also carries its node name as a DNS name and as its
// subject's common name when the name is printable ASCII, for the benefit
// of tools such as openssl; only the URI counts for Verify.
//
// Keys are ECDSA P-256. A node certificate is good for both ends of a TLS
// connection (extended key usages server and client authentication).
//
// The package does no I/O beyond reading the files LoadFiles is given and
// creating those WriteNew is given (files.go, which also names them), and
// takes the time and the random source as arguments, so everything it
// decides is testable without a clock.
package pki
