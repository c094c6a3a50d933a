#!/bin/sh
# prerm of the usher package: on removal, stop the agent (it leaves its
# farm gracefully). An upgrade leaves it running.
set -e

if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
	deb-systemd-invoke stop usher.service >/dev/null || true
fi
exit 0
