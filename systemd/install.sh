#!/bin/sh
# Install Buzzer Beater as a systemd service on Raspberry Pi OS or Debian, from this checkout.
#
#   sudo systemd/install.sh hub              the hub: the server everyone connects to
#   sudo systemd/install.sh node             a player station (button, LED, buzzer on GPIO)
#   sudo systemd/install.sh hub --uninstall  remove it again (keeps results and edited config)
#   sudo systemd/install.sh hub --uninstall --purge   also remove the config and the results
#
# What it does (and undoes):
#   /opt/buzzer-beater                   a virtual environment made with the system's python3,
#                                        holding the package installed from this checkout
#   /etc/buzzer-beater/ROLE.toml         the config, copied once; an edited file is never replaced
#   /etc/buzzer-beater/ROLE.toml.default the config as shipped, to compare with after an upgrade
#   /etc/systemd/system/buzzer-ROLE.service, enabled (and started, on a live system)
#
# Running it again changes nothing unless the checkout changed.
#
# Options:
#   --root DIR     install into DIR instead of / (for tests and staging). No systemctl call
#                  touches the running system: the unit is enabled with `systemctl --root`. The
#                  virtual environment's scripts name their interpreter by its path under DIR,
#                  so build a real SD card image inside a chroot, not with --root.
#   --uninstall    remove what this script installed.
#   --purge        with --uninstall: also remove the config and the hub's results.
#
# Environment:
#   BUZZER_PYTHON=PATH          the interpreter for the virtual environment (default /usr/bin/python3)
#   BUZZER_INSTALL_SKIP_PIP=1   create the environment without pip and skip installing the package
#                               (the test suite uses this to stay fast and offline)
set -eu

PREFIX=/opt/buzzer-beater
CONF=/etc/buzzer-beater
UNITS=/etc/systemd/system
SRC=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${BUZZER_PYTHON:-/usr/bin/python3}
SKIP_PIP=${BUZZER_INSTALL_SKIP_PIP:-0}

say() { printf 'install.sh: %s\n' "$*"; }
die() { printf 'install.sh: %s\n' "$*" >&2; exit 1; }
usage() { sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

[ $# -ge 1 ] || usage
ROLE=$1
shift
case $ROLE in
    hub | node) ;;
    *) usage ;;
esac
ROOT=
UNINSTALL=0
PURGE=0
while [ $# -gt 0 ]; do
    case $1 in
        --root) [ $# -ge 2 ] || usage; ROOT=${2%/}; shift 2 ;;
        --root=*) ROOT=${1#--root=}; ROOT=${ROOT%/}; shift ;;
        --uninstall) UNINSTALL=1; shift ;;
        --purge) PURGE=1; shift ;;
        *) usage ;;
    esac
done
[ "$PURGE" = 0 ] || [ "$UNINSTALL" = 1 ] || die "--purge only goes with --uninstall"
if [ -n "$ROOT" ]; then
    mkdir -p "$ROOT"
    ROOT=$(cd "$ROOT" && pwd)
    LIVE=0
else
    [ "$(id -u)" = 0 ] || die "run it as root: sudo $0 $ROLE"
    LIVE=0
    [ -d /run/systemd/system ] && LIVE=1
fi

UNIT=buzzer-$ROLE.service
VENV=$ROOT$PREFIX
CONFIG=$ROOT$CONF/$ROLE.toml
UNIT_FILE=$ROOT$UNITS/$UNIT
STAMP=$VENV/.installed-from

# Copy $1 to $2 only when the content differs, so that a second run leaves mtimes alone.
put() {
    if ! cmp -s "$1" "$2"; then
        install -m "${3:-0644}" "$1" "$2"
        say "installed $2"
    fi
}

# A fingerprint of everything pip would install from the checkout.
source_hash() {
    (
        cd "$SRC"
        find pyproject.toml hub firmware -type f ! -path '*/__pycache__/*' ! -name '*.pyc' \
            | LC_ALL=C sort | xargs sha256sum
    ) | sha256sum | cut -d' ' -f1
}

systemctl_root() {
    if command -v systemctl >/dev/null 2>&1; then
        systemctl --root="$ROOT" --quiet "$@"
    else
        return 1
    fi
}

enable_unit() {
    if [ -n "$ROOT" ]; then
        if ! systemctl_root enable "$UNIT"; then
            wants=$ROOT$UNITS/multi-user.target.wants
            mkdir -p "$wants"
            [ -L "$wants/$UNIT" ] || ln -s "$UNITS/$UNIT" "$wants/$UNIT"
        fi
    elif [ "$LIVE" = 1 ]; then
        systemctl daemon-reload
        systemctl enable --quiet "$UNIT"
        systemctl restart "$UNIT"
        say "started $UNIT; follow it with: journalctl -u $UNIT -f"
    else
        systemctl --quiet enable "$UNIT"
        say "enabled $UNIT; it starts at the next boot"
    fi
}

disable_unit() {
    if [ -n "$ROOT" ]; then
        systemctl_root disable "$UNIT" 2>/dev/null || true
        rm -f "$ROOT$UNITS/multi-user.target.wants/$UNIT"
        rmdir "$ROOT$UNITS/multi-user.target.wants" 2>/dev/null || true
    elif [ "$LIVE" = 1 ]; then
        systemctl disable --now --quiet "$UNIT" 2>/dev/null || true
    else
        systemctl disable --quiet "$UNIT" 2>/dev/null || true
    fi
}

install_all() {
    shipped=$SRC/config/$ROLE.toml
    [ -f "$shipped" ] || die "$shipped is missing from this checkout"
    [ -x "$PYTHON" ] || die "$PYTHON not found; install it: apt install python3 python3-venv"

    # The virtual environment. A node also sees the system's packages: on Raspberry Pi OS the
    # GPIO library gpiozero uses (lgpio) comes from apt (python3-lgpio), not from PyPI.
    if [ ! -x "$VENV/bin/python3" ]; then
        set -- -m venv
        [ "$ROLE" = node ] && set -- "$@" --system-site-packages
        [ "$SKIP_PIP" = 1 ] && set -- "$@" --without-pip
        "$PYTHON" "$@" "$VENV" \
            || die "could not create $VENV; on Debian: apt install python3-venv"
        say "created the virtual environment $VENV"
    fi
    if [ "$SKIP_PIP" = 1 ]; then
        say "BUZZER_INSTALL_SKIP_PIP=1: not installing the package into $VENV"
    else
        wanted=$(source_hash)
        if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$wanted" ]; then
            [ -x "$VENV/bin/pip" ] || "$VENV/bin/python3" -m ensurepip --upgrade
            "$VENV/bin/python3" -m pip install --quiet --disable-pip-version-check --upgrade "$SRC"
            printf '%s\n' "$wanted" >"$STAMP"
            say "installed buzzer-beater from $SRC into $VENV"
        fi
    fi

    # The config: the first install copies it; later ones never touch an edited file.
    mkdir -p "$ROOT$CONF"
    put "$shipped" "$CONFIG.default"
    if [ ! -e "$CONFIG" ]; then
        install -m 0644 "$shipped" "$CONFIG"
        say "installed $CONFIG: edit it, then: systemctl restart $UNIT"
    fi

    if [ "$ROLE" = node ] && [ -z "$ROOT" ] && ! getent group gpio >/dev/null; then
        # Raspberry Pi OS has it (it owns /dev/gpiochip*); elsewhere the unit needs it to start.
        groupadd --system gpio
        say "created the gpio group (this machine had none)"
    fi

    mkdir -p "$ROOT$UNITS"
    put "$SRC/systemd/$UNIT" "$UNIT_FILE"
    enable_unit
    say "$UNIT is installed and enabled"
}

uninstall_all() {
    [ -e "$UNIT_FILE" ] && disable_unit
    if [ -e "$UNIT_FILE" ]; then
        rm -f "$UNIT_FILE"
        say "removed $UNIT_FILE"
    fi
    [ "$LIVE" = 1 ] && systemctl daemon-reload

    # The environment is shared by hub and node: remove it with the last of them.
    other=buzzer-hub.service
    [ "$ROLE" = hub ] && other=buzzer-node.service
    if [ ! -e "$ROOT$UNITS/$other" ] && [ -d "$VENV" ]; then
        rm -rf "$VENV"
        say "removed $VENV"
    fi

    if [ "$PURGE" = 1 ]; then
        rm -f "$CONFIG" "$CONFIG.default"
        if [ "$ROLE" = hub ]; then
            # DynamicUser keeps the state in /var/lib/private, behind a symlink.
            rm -rf "$ROOT/var/lib/buzzer-beater" "$ROOT/var/lib/private/buzzer-beater"
        else
            rm -rf "$ROOT/var/lib/buzzer-node" "$ROOT/var/lib/private/buzzer-node"
        fi
        say "removed the $ROLE config and data"
    else
        if [ -f "$CONFIG" ] && [ -f "$CONFIG.default" ] && cmp -s "$CONFIG" "$CONFIG.default"; then
            rm -f "$CONFIG"
        elif [ -f "$CONFIG" ]; then
            say "kept your edited $CONFIG (remove it with --purge)"
        fi
        rm -f "$CONFIG.default"
    fi
    rmdir "$ROOT$CONF" 2>/dev/null || true
    say "$UNIT is uninstalled"
}

if [ "$UNINSTALL" = 1 ]; then
    uninstall_all
else
    install_all
fi
