#!/bin/sh
# Build a wheelhouse: every wheel systemd/install.sh needs to install Buzzer Beater with no
# network, for Raspberry Pi OS Bookworm (Python 3.11, glibc 2.36), on a machine that has one.
#
#   systemd/build-wheelhouse.sh DIR                  for 64-bit (aarch64) and 32-bit (armv7l) Pis
#   systemd/build-wheelhouse.sh DIR x86_64           for a PC or laptop running Debian Bookworm
#
# Then copy DIR to a USB stick, and on each Pi, from a copy of this checkout:
#   sudo systemd/install.sh node --wheelhouse /media/usb/wheels
#
# DIR gets, for every machine named: the project's dependencies with lgpio (the GPIO library
# gpiozero uses) as binary wheels, setuptools and wheel (the project's build needs
# setuptools >= 68, Bookworm has 66.1), and a wheel of this project itself. One DIR serves all
# the machines named; pip picks the wheels that fit. The machine running this may be any Linux,
# Mac or Windows with python3 and pip (pip downloads for the target, it never runs the wheels).
#
# Environment:
#   BUZZER_PYTHON=PATH     the python3 to run pip with (default: python3)
#   BUZZER_PY_VERSION=X.Y  the target's Python (default 3.11, Bookworm's)
#   BUZZER_GLIBC=2.NN      the target's glibc (default 2.36, Bookworm's)
#   BUZZER_TOURNAMENT=1    also the PostgreSQL driver a room hub of a tournament needs
#                          (install.sh hub --tournament), for aarch64 and x86_64: psycopg has no
#                          binary wheel for 32-bit ARM, so a 32-bit Pi cannot be a room hub
set -eu

SRC=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${BUZZER_PYTHON:-python3}
PY_VERSION=${BUZZER_PY_VERSION:-3.11}
GLIBC_MINOR=${BUZZER_GLIBC:-2.36}
GLIBC_MINOR=${GLIBC_MINOR#2.}

say() { printf 'build-wheelhouse.sh: %s\n' "$*"; }
die() { printf 'build-wheelhouse.sh: %s\n' "$*" >&2; exit 1; }

[ $# -ge 1 ] || { sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
OUT=$1
shift
[ $# -gt 0 ] || set -- aarch64 armv7l
for arch in "$@"; do
    case $arch in
        aarch64 | armv7l | x86_64) ;;
        armhf) die "say armv7l for 32-bit Raspberry Pi OS (armhf)" ;;
        *) die "unknown machine $arch: choose among aarch64, armv7l, x86_64" ;;
    esac
done
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# pip: the interpreter's own, or one in a throwaway environment (Debian's python3 has none).
if "$PYTHON" -m pip --version >/dev/null 2>&1; then
    pip() { "$PYTHON" -m pip --disable-pip-version-check "$@"; }
else
    "$PYTHON" -m venv "$work/venv" || die "$PYTHON has neither pip nor venv: apt install python3-venv"
    pip() { "$work/venv/bin/python" -m pip --disable-pip-version-check "$@"; }
fi

# The project's own wheel, built from a temporary copy of the checkout (the checkout stays clean).
mkdir "$work/src"
(cd "$SRC" && tar --exclude=__pycache__ --exclude='*.pyc' --exclude='*.egg-info' \
    -cf - pyproject.toml README.md wire hub firmware) | tar -C "$work/src" -xf -
pip wheel --quiet --no-deps --wheel-dir "$work/dist" "$work/src" || die "building the project's wheel failed"
wheel=$(ls "$work"/dist/buzzer_beater-*.whl)
cp "$wheel" "$OUT/"
say "built $(basename "$wheel")"

for arch in "$@"; do
    # Every manylinux tag the target's glibc accepts, newest first, and plain linux_ARCH (the tag
    # some projects, lgpio among them, use for their 32-bit ARM wheels).
    set --
    minor=$GLIBC_MINOR
    while [ "$minor" -ge 17 ]; do
        set -- "$@" --platform "manylinux_2_${minor}_$arch"
        minor=$((minor - 1))
    done
    set -- "$@" --platform "manylinux2014_$arch" --platform "linux_$arch"
    abi=cp$(echo "$PY_VERSION" | tr -d .)
    extras=node
    if [ "${BUZZER_TOURNAMENT:-0}" = 1 ]; then
        if [ "$arch" = armv7l ]; then
            say "armv7l: no tournament driver (psycopg has no 32-bit ARM wheel); nodes only there"
        else
            extras=node,tournament
        fi
    fi
    pip download --quiet --dest "$OUT" --only-binary=:all: "$@" \
        --python-version "$PY_VERSION" --implementation cp --abi "$abi" --abi abi3 --abi none \
        "$wheel[$extras]" "setuptools>=68" wheel \
        || die "downloading the wheels for $arch failed (see pip's message above)"
    say "downloaded the wheels for $arch, Python $PY_VERSION"
done
# The project's wheel is the one built above: pip download copies it in as well.
say "$OUT is ready: $(ls "$OUT" | wc -l) wheels, $(du -sh "$OUT" | cut -f1)"
