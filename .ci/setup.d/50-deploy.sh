#!/usr/bin/env bash
# Deploy tests (tests/test_deploy_*.py, tests/test_systemd_*.py): Debian's sshd, ssh client and
# systemd tools (systemd-analyze; systemd is not PID 1 here and is not needed as one), useradd,
# and ansible-core for the rollout playbook. Idempotent.
set -euo pipefail
missing=()
for pkg in openssh-server openssh-client systemd passwd; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [[ ${#missing[@]} -gt 0 ]]; then
    apt-get update -q
    # Installing openssh-server would start sshd on 0.0.0.0:22; the tests start their own on
    # 127.0.0.1, and nothing of ours listens beyond loopback: no service starts during this install.
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
    systemctl disable ssh.service ssh.socket >/dev/null 2>&1 || true
fi
# sshd's privilege-separation folder (the tests create it too: /run is emptied at boot).
install -d -m 0755 /run/sshd
# ansible-core adds only itself and resolvelib to the environment (its other needs are present).
python3 -m pip install -q --disable-pip-version-check 'ansible-core>=2.16'
