package apiclient

import "flag"

// Flags are the flags of a command that say which agent to call: -http and
// -ca-file, each with its environment variable as the default.
type Flags struct {
	addr, caFile *string
}

// RegisterFlags registers -http and -ca-file on fs.
func RegisterFlags(fs *flag.FlagSet) Flags {
	return Flags{
		addr:   fs.String("http", "", "address of the agent's HTTP API, host:port or https://host:port (default $"+AddrEnv+", else "+DefaultAddr+")"),
		caFile: fs.String("ca-file", "", "farm CA certificate (PEM) that an https:// agent's certificate must chain to, naming a node of its farm (default $"+CAFileEnv+")"),
	}
}

// New returns a client for the agent the parsed flags, or the environment
// in their absence, name (see Addr and CAFile).
func (f Flags) New() (*Client, error) {
	return New(Addr(*f.addr), CAFile(*f.caFile))
}
