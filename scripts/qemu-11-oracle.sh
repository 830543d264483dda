#!/usr/bin/env bash
# Provisions the QEMU 11.1 oracle: a Debian sid chroot holding qemu-system-x86
# (11.1.x, with the qtest accelerator), made with mmdebstrap from the mirror
# this machine's apt sources already use.  Idempotent: an existing chroot with
# a working qemu-system-x86_64 is kept.  Needs root (chroot) and mmdebstrap.
#
#   scripts/qemu-11-oracle.sh [DIR]     (default: $VTEMU_QEMU11_ROOT or /opt/vtemu/qemu-11-sid)
#
# The test harness runs `chroot DIR qemu-system-x86_64 ...` (test/harness/qemu.ts).
set -euo pipefail
dir=${1:-${VTEMU_QEMU11_ROOT:-/opt/vtemu/qemu-11-sid}}

if [ -x "$dir/usr/bin/qemu-system-x86_64" ] && chroot "$dir" qemu-system-x86_64 --version >/dev/null 2>&1; then
  chroot "$dir" qemu-system-x86_64 --version | head -1
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "qemu-11-oracle: building the sid chroot needs root (chroot, mmdebstrap)" >&2
  exit 1
fi
command -v mmdebstrap >/dev/null 2>&1 || {
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mmdebstrap >/dev/null
}

# The first deb URI of this machine's apt sources (deb822 or one-line format).
mirror=$(
  { cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '/^URIs:/ {print $2; exit}'; } ||
  true
)
if [ -z "$mirror" ]; then
  mirror=$(grep -hE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | awk '{for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) {print $i; exit}}' | head -1)
fi
mirror=${mirror:-http://deb.debian.org/debian}

rm -rf "$dir"
mkdir -p "$(dirname "$dir")"
echo "qemu-11-oracle: building a sid chroot in $dir from $mirror"
mmdebstrap --variant=apt --include=qemu-system-x86 \
  --aptopt='Acquire::Check-Valid-Until "false"' \
  sid "$dir" "$mirror" >/dev/null
chroot "$dir" qemu-system-x86_64 --version | head -1
