// Package demo is `usher demo`: a five-node Usher farm on loopback (agent
// processes of the usher binary, started with internal/farm) and a few
// hundred client sessions in this process. It kills the leader with
// SIGKILL, then a server with sessions, while a table of the nodes shows
// the balancer address and the clients moving, and it ends with a summary:
// the failover time, how fast the displaced clients were reassigned, the
// sessions disturbed on the servers that stayed up (which must be none)
// and the load spread.
//
// cmd/usher/demo.go parses the command's flags and calls Run.
package demo
