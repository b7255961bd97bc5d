"""A cloud node's firewall: the nftables rules its cloud-init loads before the agent
starts (worker/nodes/providers/hetzner/cloud_init.py), and what the firewall test applies
in network namespaces of its own (tests/worker/nodes/test_firewall.py).

    rules(agent_port)   the whole ruleset text, for `nft -f`

Inbound TCP to the agent's port is accepted from Cloudflare's published address ranges
(where the proxied `vm-{id}` record's traffic comes from) and from loopback (the node's own
health check), and dropped from everyone else, the node's own containers included. SSH is
dropped from everywhere: no key is installed, and a node is reached only through the
edge (the Hetzner console remains for an operator). Everything else keeps the default
policy (accept), so Docker's own rules and the workspaces' networks are untouched. The
rules live in a table of their own, replaced whole when loaded again.
"""

SSH_PORT = 22
TABLE = "sam_node"

# https://www.cloudflare.com/ips-v4 and /ips-v6: Cloudflare's proxy connects to origins
# from these. Cloudflare changes them rarely and announces it; update here when it does.
CLOUDFLARE_IPV4 = (
    "173.245.48.0/20",
    "103.21.244.0/22",
    "103.22.200.0/22",
    "103.31.4.0/22",
    "141.101.64.0/18",
    "108.162.192.0/18",
    "190.93.240.0/20",
    "188.114.96.0/20",
    "197.234.240.0/22",
    "198.41.128.0/17",
    "162.158.0.0/15",
    "104.16.0.0/13",
    "104.24.0.0/14",
    "172.64.0.0/13",
    "131.0.72.0/22",
)
CLOUDFLARE_IPV6 = (
    "2400:cb00::/32",
    "2606:4700::/32",
    "2803:f800::/32",
    "2405:b500::/32",
    "2405:8100::/32",
    "2a06:98c0::/29",
    "2c0f:f248::/32",
)


def rules(agent_port: int) -> str:
    assert 0 < agent_port < 65536 and agent_port != SSH_PORT
    v4 = ", ".join(CLOUDFLARE_IPV4)
    v6 = ", ".join(CLOUDFLARE_IPV6)
    return f"""# SAM: the agent's port is Cloudflare's (the edge) and loopback's only; SSH is closed
table inet {TABLE}
delete table inet {TABLE}
table inet {TABLE} {{
  set cloudflare_v4 {{ type ipv4_addr; flags interval; elements = {{ {v4} }}; }}
  set cloudflare_v6 {{ type ipv6_addr; flags interval; elements = {{ {v6} }}; }}
  chain input {{
    type filter hook input priority filter - 1; policy accept;
    tcp dport {agent_port} iif "lo" accept
    tcp dport {agent_port} ip saddr @cloudflare_v4 accept
    tcp dport {agent_port} ip6 saddr @cloudflare_v6 accept
    tcp dport {{ {agent_port}, {SSH_PORT} }} drop
  }}
}}
"""
