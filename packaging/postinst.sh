#!/bin/sh
# postinst of the usher package: the system user the agent runs as, its
# data directory, the configuration's ownership, and systemd told of the
# unit. The agent is neither enabled nor started: the configuration
# shipped is an example, and a farm agent starts when its operator has
# written the real one (systemctl enable --now usher).
set -e

case "$1" in
configure) ;;
*) exit 0 ;;
esac

if ! getent group usher >/dev/null; then
	addgroup --system --quiet usher
fi
if ! getent passwd usher >/dev/null; then
	adduser --system --quiet --ingroup usher --home /var/lib/usher --no-create-home \
		--shell /usr/sbin/nologin --gecos "Usher agent" usher
fi
install -d -o usher -g usher -m 0750 /var/lib/usher
# The agent reads its configuration and key files through its group.
chown root:usher /etc/usher /etc/usher/usher.hcl
chmod 0750 /etc/usher
chmod 0640 /etc/usher/usher.hcl

if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null || true
	if [ -n "$2" ] && systemctl is-active --quiet usher.service; then
		# Upgrades are rolled through a farm by its operator, one node
		# at a time; the running agent keeps the old binary until then.
		echo "usher: the running agent keeps the old version until 'systemctl restart usher'"
	fi
fi
exit 0
