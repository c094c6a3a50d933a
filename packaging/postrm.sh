#!/bin/sh
# postrm of the usher package: on purge, forget the unit's enablement and
# remove the agent's data directory (Raft's log). The usher user stays,
# as Debian's system users do: files it owns may remain elsewhere.
set -e

case "$1" in
remove)
	if [ -d /run/systemd/system ]; then
		systemctl daemon-reload >/dev/null || true
	fi
	;;
purge)
	# The unit file is gone already: drop what enabling it made.
	rm -f /etc/systemd/system/multi-user.target.wants/usher.service
	rm -rf /var/lib/usher
	if [ -d /run/systemd/system ]; then
		systemctl daemon-reload >/dev/null || true
	fi
	;;
esac
exit 0
