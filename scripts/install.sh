#!/usr/bin/env bash
# Idempotent set-up on Debian 12 as root: system packages, then the virtualenv.
# The venv is made from Debian's python3 with --system-site-packages because
# Debian's `mininet` package installs its module there.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(mininet openvswitch-switch iperf3 ethtool cgroup-tools iputils-ping iproute2
              procps psmisc python3-venv python3-pip python3-yaml make curl)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    echo "installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [[ ! -x .venv/bin/python ]]; then
    /usr/bin/python3 -m venv --system-site-packages .venv
fi
stamp=.venv/.sdncep-installed
want=$(cat setup.cfg pyproject.toml | sha256sum | cut -d' ' -f1)
if [[ ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
    echo "installing Python packages into .venv (torch is large: a few minutes the first time)"
    .venv/bin/pip install -q -e '.[test]'
    echo "$want" > "$stamp"
fi
.venv/bin/python -c "import ryu, mininet.net, torch" || { echo "install check failed" >&2; exit 1; }
