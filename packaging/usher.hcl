# /etc/usher/usher.hcl: the Usher agent's configuration (usher(1); the keys
# are those of `usher agent -h`, with underscores for dashes; README.md,
# "Running a farm", explains them). Check it with
#   usher validate /etc/usher/usher.hcl
# then start the agent with `systemctl enable --now usher`.
#
# As shipped, this is a farm of one on loopback: it runs, answers probes on
# 127.0.0.100:3478 and redirects them to itself, and reaches nothing
# beyond this host. Set the keys below for a real farm.

# This node's name in the farm, unique; the host name when unset.
# node_name = "media-07"

# Raft's log and the node's durable state; systemd makes it (StateDirectory).
data_dir = "/var/lib/usher"

# Gossip (memberlist, UDP and TCP); Raft listens on the next port of the
# same address. On a farm: this node's own address, e.g. "10.0.0.7:7946".
bind = "127.0.0.1:7946"

# Seeds to join at start, retried until one answers (any members will do).
# join = ["10.0.0.5:7946", "10.0.0.6:7946"]

# The farm's name: farms with different labels never merge.
# label = "media-prod"

# Voters: 1 for a farm of one, 3 or 5 for a farm. A farm of several voters
# needs gossip encryption and Raft's TLS below (or insecure = true).
bootstrap_expect = 1
# voter = true

# Timing profile, the same on every node: lan | fast | rapid.
profile = "lan"

# The session endpoint: the address clients are redirected to.
session_addr = "127.0.0.1:3479"
capacity     = 1000

# The well-known balancer address, held by the leader only.
# vip_mode "bind": the address is routed to every node already.
# vip_mode "netlink": the leader adds it to interface and announces it
# (the unit grants CAP_NET_ADMIN and CAP_NET_RAW for this).
vip      = "127.0.0.100:3478"
vip_mode = "bind"
# interface = "eth0"

# The HTTP API (usher status, members, drain, /metrics). On an address
# other than loopback it needs api_token (or api_token_file).
http = "127.0.0.1:7480"

# Secrets live in files of mode 0600 owned by usher, e.g.
#   usher keygen | install -o usher -g usher -m 600 /dev/stdin /etc/usher/gossip.key
# encrypt_key_file = "/etc/usher/gossip.key"
#
# tls {
#   ca_file   = "/etc/usher/usher-media-prod-ca.pem"
#   cert_file = "/etc/usher/usher-media-prod-media-07.pem"
#   key_file  = "/etc/usher/usher-media-prod-media-07-key.pem"
# }

# Files the agent writes must lie under /var/lib/usher (the unit's
# ProtectSystem=strict makes the rest of the system read-only to it).
# vip_events = "/var/lib/usher/vip-events.jsonl"

log_level = "info"
# log_json = true
