"""The `user_data` of a Hetzner node: a `#cloud-config` that turns Debian 12 into a SAM node.

It writes the agent's settings and a few numbered setup scripts, and one `runcmd` runs the
scripts in order, stopping at the first that fails:

    10-packages.sh   docker.io, nftables, git, curl; Node.js 20 from nodejs.org (checked
                     against its SHASUMS256.txt; Debian 12's own is 18) and the pinned
                     devcontainer CLI, which the agent runs for `devcontainer up`
    20-agent.sh      downloads the agent artifact from {control plane}/api/agent/download
                     (served from R2), checks its SHA256SUMS, installs it with its own
                     install.sh into /opt/sam-agent/venv (offline wheels, nothing compiled)
    25-container-tools.sh
                     Node 22 and the ACP adapters (the artifact's container-tools lock,
                     `npm ci`) into /opt/sam-agent/container-tools, which the agent mounts
                     read-only into every workspace container for agent sessions
    30-token.sh      exchanges the one-time bootstrap token at POST /api/bootstrap/{token}
                     for the node's callback token, written to the agent's token file (0600);
                     the bootstrap token file is deleted
    35-tls.sh        makes the agent's TLS key (0600) and a CSR with openssl, and has the
                     control plane certify it: POST /api/nodes/{id}/tls-certificate {csr}
                     with the callback token → Cloudflare's Origin CA certificate for
                     vm-{id}.{domain}. The key never leaves the VM.
    40-firewall.sh   nftables (worker/nodes/providers/hetzner/firewall.py): the agent port
                     accepts only Cloudflare's published ranges and loopback; SSH is closed
    50-service.sh    the artifact's systemd unit (the agent runs as root), start
    60-ready.sh      waits for the agent's /health (TLS on loopback), then
                     POST /api/nodes/{id}/ready {agent_port, version} with the callback
                     token (the agent itself only sends heartbeats; a failure here is left
                     to the first heartbeat)

Secrets: none. The only credential in it is the bootstrap token, which is single use and
expires in 15 minutes (worker/nodes/bootstrap.py): a leaked `user_data` (any process on the VM
can read it from the metadata service) is worthless once the node has booted. The TLS key is
made on the VM, so it is in no user_data and crosses no network. The firewall is inside the
VM rather than a Hetzner Cloud Firewall so that it is in place before the agent starts and
nothing outside the server has to be created or cleaned up with it. Hetzner refuses
`user_data` over 32 KiB; `render` checks that. docs/edge-to-node.md has the whole design.
"""

import re

from wire.version import VERSION
from worker.nodes.providers.base import NodeBoot
from worker.nodes.providers.hetzner import firewall

MAX_USER_DATA_BYTES = 32 * 1024  # Hetzner Cloud's limit
NODE_VERSION = "20.18.1"  # Node.js for the devcontainer CLI (DESIGN.md: Node 20)
DEVCONTAINER_CLI_VERSION = "0.89.0"  # the same pin as package.json
ETC_DIR = "/etc/sam-agent"
OPT_DIR = "/opt/sam-agent"
# Where the agent looks for the container tools on a VM (agent/config.py VM_CONTAINER_TOOLS).
CONTAINER_TOOLS_DIR = f"{OPT_DIR}/container-tools"
# Production dependencies only, exactly as locked; the VM's npm is the one 10-packages.sh put
# in /usr/local.
CONTAINER_TOOLS_NPM_CI = "/usr/local/bin/npm ci --omit=dev --no-audit --no-fund"
STATE_DIR = "/var/lib/sam-agent"
SETUP_DIR = f"{OPT_DIR}/setup"
ENV_FILE = f"{ETC_DIR}/env"
BOOTSTRAP_TOKEN_FILE = f"{ETC_DIR}/bootstrap-token"
CALLBACK_TOKEN_FILE = f"{STATE_DIR}/callback-token"
FIREWALL_FILE = f"{ETC_DIR}/firewall.nft"
TLS_DIR = f"{ETC_DIR}/tls"
TLS_CERT_FILE = f"{TLS_DIR}/cert.pem"
TLS_KEY_FILE = f"{TLS_DIR}/key.pem"
# Seconds 60-ready.sh waits for the agent's /health before giving up.
READY_WAIT_SECONDS = 120

# What may be written unquoted into the env file and the scripts.
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_SAFE_URL = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?")
_SAFE_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,128}")

RUNNER = f"""#!/bin/sh
# Runs this node's setup steps in order and stops at the first that fails; the output is
# in /var/log/cloud-init-output.log.
for step in {SETUP_DIR}/[0-9]*.sh; do
  echo "sam-node-setup: $(date -u +%Y-%m-%dT%H:%M:%SZ) $step"
  sh -eu "$step" || {{ echo "sam-node-setup: $step failed" >&2; exit 1; }}
done
echo "sam-node-setup: done"
"""

PACKAGES = f"""# Docker Engine, the firewall, git and curl; Node.js 20 and the devcontainer CLI.
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends docker.io nftables git curl ca-certificates \\
  xz-utils python3
systemctl enable --now docker
NODE=node-v{NODE_VERSION}-linux-x64
cd /tmp
curl -fsSLO --retry 5 "https://nodejs.org/dist/v{NODE_VERSION}/$NODE.tar.xz"
curl -fsSLO --retry 5 "https://nodejs.org/dist/v{NODE_VERSION}/SHASUMS256.txt"
grep " $NODE.tar.xz\\$" SHASUMS256.txt | sha256sum -c -
tar -xJf "$NODE.tar.xz" -C /usr/local --strip-components=1 --no-same-owner \\
  --exclude=CHANGELOG.md --exclude=LICENSE --exclude=README.md
rm -f "$NODE.tar.xz" SHASUMS256.txt
/usr/local/bin/npm install -g --no-fund --no-audit @devcontainers/cli@{DEVCONTAINER_CLI_VERSION}
"""

AGENT = f"""# The agent artifact from the control plane (R2), installed offline from its wheels.
mkdir -p {OPT_DIR}
curl -fsSL --retry 10 --retry-connrefused --retry-delay 3 -o {OPT_DIR}/sam-agent.tar.gz \\
  "__CONTROL_PLANE__/api/agent/download"
tar -xzf {OPT_DIR}/sam-agent.tar.gz -C {OPT_DIR} --no-same-owner
cd {OPT_DIR}/sam-agent-__VERSION__
sha256sum --quiet -c SHA256SUMS
sh ./install.sh {OPT_DIR}/venv
"""

CONTAINER_TOOLS = f"""# What agent sessions run inside workspace containers (mounted read-only
# there), so a user's image needs no Node of its own: Node 22 and the ACP adapters, from
# the lock file the artifact carries, at the versions the tests ran.
mkdir -p {CONTAINER_TOOLS_DIR}
cp {OPT_DIR}/sam-agent-__VERSION__/container-tools/package.json \
  {OPT_DIR}/sam-agent-__VERSION__/container-tools/package-lock.json {CONTAINER_TOOLS_DIR}/
cd {CONTAINER_TOOLS_DIR}
{CONTAINER_TOOLS_NPM_CI}
"""

TOKEN = f"""# The bootstrap token → the node's callback token (0600), before the agent starts.
umask 077
mkdir -p {STATE_DIR}
curl -fsS --retry 10 --retry-connrefused --retry-delay 3 -X POST -o {STATE_DIR}/bootstrap.json \\
  "__CONTROL_PLANE__/api/bootstrap/$(cat {BOOTSTRAP_TOKEN_FILE})"
python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["callback_token"])' \\
  {STATE_DIR}/bootstrap.json > {CALLBACK_TOKEN_FILE}.new
mv {CALLBACK_TOKEN_FILE}.new {CALLBACK_TOKEN_FILE}
rm -f {STATE_DIR}/bootstrap.json {BOOTSTRAP_TOKEN_FILE}
"""

# The settings every later step reads (the agent's env file).
LOAD_ENV = f"""set -a
. {ENV_FILE}
set +a
"""

TLS = f"""# The agent's TLS key is made here and never leaves this VM; the control plane has
# Cloudflare's Origin CA certify it for this node's name (vm-{{id}}.{{domain}}).
{LOAD_ENV}umask 077
mkdir -p {TLS_DIR}
cd {TLS_DIR}
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \\
  -subj "/CN=sam-node-$SAM_NODE_ID" -keyout "$SAM_TLS_KEY" -out request.csr
python3 -c 'import json, sys; print(json.dumps({{"csr": open(sys.argv[1]).read()}}))' \\
  request.csr > request.json
curl -fsS --retry 10 --retry-connrefused --retry-delay 3 -X POST -o answer.json \\
  -H "Authorization: Bearer $(cat "$SAM_CALLBACK_TOKEN_FILE")" \\
  -H "Content-Type: application/json" --data @request.json \\
  "$SAM_CONTROL_PLANE_URL/api/nodes/$SAM_NODE_ID/tls-certificate"
python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["certificate"])' \\
  answer.json > "$SAM_TLS_CERT.new"
mv "$SAM_TLS_CERT.new" "$SAM_TLS_CERT"
rm -f request.csr request.json answer.json
"""

FIREWALL = f"""# The agent port: Cloudflare (the edge) and loopback only; SSH closed; on reboot too.
nft -f {FIREWALL_FILE}
grep -q 'include "{FIREWALL_FILE}"' /etc/nftables.conf \\
  || echo 'include "{FIREWALL_FILE}"' >> /etc/nftables.conf
systemctl enable nftables
"""

SERVICE = f"""# The agent as a systemd service, as root (the unit says why).
chmod 0700 {STATE_DIR}
install -m 0644 {OPT_DIR}/sam-agent-__VERSION__/sam-agent.service \\
  /etc/systemd/system/sam-agent.service
systemctl daemon-reload
systemctl enable --now sam-agent
"""

READY = f"""# Tell the control plane the agent is up (its heartbeats would, a little later).
# The probe reads /health on loopback only and sends nothing secret: no need to check
# the certificate, which is for vm-{{id}}.{{domain}}, not 127.0.0.1 (hence -k).
{LOAD_ENV}waited=0
until curl -fsk -o /dev/null "https://127.0.0.1:$SAM_AGENT_PORT/health"; do
  waited=$((waited + 1))
  if [ "$waited" -ge {READY_WAIT_SECONDS} ]; then
    echo "the agent never answered /health" >&2
    exit 1
  fi
  sleep 1
done
curl -fsS --retry 5 --retry-connrefused -o /dev/null -X POST \\
  -H "Authorization: Bearer $(cat "$SAM_CALLBACK_TOKEN_FILE")" \\
  -H "Content-Type: application/json" \\
  --data "{{\\"agent_port\\": $SAM_AGENT_PORT, \\"version\\": \\"__VERSION__\\"}}" \\
  "$SAM_CONTROL_PLANE_URL/api/nodes/$SAM_NODE_ID/ready" \\
  || echo "the ready callback failed; the agent's first heartbeat will report it" >&2
"""

SETUP_STEPS = (
    ("10-packages.sh", PACKAGES),
    ("20-agent.sh", AGENT),
    ("25-container-tools.sh", CONTAINER_TOOLS),
    ("30-token.sh", TOKEN),
    ("35-tls.sh", TLS),
    ("40-firewall.sh", FIREWALL),
    ("50-service.sh", SERVICE),
    ("60-ready.sh", READY),
)


def agent_env(boot: NodeBoot) -> str:
    """/etc/sam-agent/env: the agent's settings (docs/protocols/agent-api.md); no secret."""
    return "".join(
        f"{name}={value}\n"
        for name, value in (
            ("SAM_NODE_ID", boot.node_id),
            ("SAM_CONTROL_PLANE_URL", boot.control_plane_url),
            ("SAM_AGENT_HOST", "0.0.0.0"),
            ("SAM_AGENT_PORT", boot.agent_port),
            ("SAM_CLOUD_NODE", "true"),
            ("SAM_BACKEND", "docker"),
            ("SAM_STATE_DIR", STATE_DIR),
            ("SAM_CALLBACK_TOKEN_FILE", CALLBACK_TOKEN_FILE),
            ("SAM_TLS_CERT", TLS_CERT_FILE),
            ("SAM_TLS_KEY", TLS_KEY_FILE),
        )
    )


def render(boot: NodeBoot, version: str = VERSION) -> str:
    """The node's `user_data`; under MAX_USER_DATA_BYTES (else AssertionError: our bug)."""
    # Everything below is written unquoted into shell and YAML: only plain values pass.
    assert _SAFE_ID.fullmatch(boot.node_id), "node ids are plain"
    assert _SAFE_URL.fullmatch(boot.control_plane_url), "the control plane URL is plain"
    assert _SAFE_TOKEN.fullmatch(boot.bootstrap_token), "bootstrap tokens are url-safe"
    assert _SAFE_ID.fullmatch(version) and 0 < boot.agent_port < 65536

    def fill(script: str) -> str:
        return script.replace("__CONTROL_PLANE__", boot.control_plane_url).replace(
            "__VERSION__", version
        )

    files = [
        (ENV_FILE, "0644", agent_env(boot)),
        (BOOTSTRAP_TOKEN_FILE, "0600", boot.bootstrap_token + "\n"),
        (FIREWALL_FILE, "0644", firewall.rules(boot.agent_port)),
        (f"{SETUP_DIR}/run", "0755", RUNNER),
        *((f"{SETUP_DIR}/{name}", "0644", fill(script)) for name, script in SETUP_STEPS),
    ]
    lines = ["#cloud-config", "write_files:"]
    for path, mode, content in files:
        assert not content[:1].isspace(), "a YAML block scalar's first line sets its indent"
        lines += [f"  - path: {path}", f"    permissions: '{mode}'", "    content: |"]
        lines += [f"      {line}" if line else "" for line in content.splitlines()]
    lines += ["runcmd:", f"  - [sh, {SETUP_DIR}/run]", ""]
    user_data = "\n".join(lines)
    assert len(user_data.encode()) <= MAX_USER_DATA_BYTES, "user_data over Hetzner's 32 KiB"
    return user_data
