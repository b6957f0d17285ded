#!/bin/sh
# Build the Debian Bookworm root file system that tests/e2e/test_systemd.py boots with
# systemd-nspawn, and pack it into one tar file:
#
#   sudo tests/e2e/systemd/build-rootfs.sh OUT.tar
#
# It holds what a fresh Raspberry Pi OS Lite has that matters here: systemd as init, dbus, and
# python3 with its venv module (so install.sh finds its prerequisites and needs no apt). Nothing
# from this project goes in: the test installs it from the checkout at every run.
#
# The test caches the tar outside the checkout, keyed by the sha256 of this file: any edit here
# builds a new one. Needs root and debootstrap (apt-get install debootstrap); about 2 minutes.
#
# Environment:
#   BUZZER_DEBIAN_MIRROR   the Debian mirror (default http://deb.debian.org/debian)
set -eu
PATH=$PATH:/usr/sbin:/sbin

[ $# -eq 1 ] || { echo "usage: $0 OUT.tar" >&2; exit 2; }
OUT=$1
MIRROR=${BUZZER_DEBIAN_MIRROR:-http://deb.debian.org/debian}
[ "$(id -u)" = 0 ] || { echo "build-rootfs.sh: debootstrap needs root" >&2; exit 1; }
command -v debootstrap >/dev/null 2>&1 \
    || { echo "build-rootfs.sh: debootstrap is missing: apt-get install debootstrap" >&2; exit 1; }

work=$(mktemp -d "${OUT}.build.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/root

debootstrap --variant=minbase \
    --include=systemd,systemd-sysv,dbus,python3,python3-venv \
    bookworm "$root" "$MIRROR" >"$work/debootstrap.log" 2>&1 \
    || { tail -n 30 "$work/debootstrap.log" >&2; exit 1; }

# A container boots faster and quieter without units that wait for hardware or a network it
# does not have; none of them is what the test looks at.
for unit in systemd-networkd-wait-online.service systemd-timesyncd.service \
    apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer; do
    ln -sf /dev/null "$root/etc/systemd/system/$unit"
done
# Each boot gets its own machine id (systemd makes a transient one when the file is empty).
: >"$root/etc/machine-id"
rm -rf "$root/var/cache/apt/archives"/*.deb "$root/var/lib/apt/lists"/*

tar --numeric-owner -C "$root" -cf "$work/rootfs.tar" .
mv "$work/rootfs.tar" "$OUT"
