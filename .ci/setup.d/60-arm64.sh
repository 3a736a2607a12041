#!/usr/bin/env bash
# The arm64 check (tests/test_arm64_board.py runs deploy/arm64/check.py): debootstrap builds a
# Debian arm64 root, qemu-user-static runs it through binfmt_misc (the check registers the entry
# if the kernel has none enabled). Idempotent.
set -euo pipefail
missing=()
for pkg in debootstrap qemu-user-static binfmt-support; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [[ ${#missing[@]} -gt 0 ]]; then
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
