// Package packaging holds what the usher Debian package and container image
// are made of (nfpm.yaml, the systemd unit, the example configuration, the
// man page, the maintainer scripts, the Containerfile) and, in its test,
// the check that make test runs on them: the package is built, linted,
// installed, tried from its installed paths and purged again.
package packaging
