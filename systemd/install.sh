#!/bin/sh
# Install Buzzer Beater as a systemd service on Raspberry Pi OS or Debian, from this checkout.
#
#   sudo systemd/install.sh hub              the hub: the server everyone connects to
#   sudo systemd/install.sh node             a player station (button, LED, buzzer on GPIO)
#   sudo systemd/install.sh node --wheelhouse /media/usb/wheels   offline, no index reached
#   sudo systemd/install.sh hub --tournament a room hub of a tournament (docs/tournament.md)
#   sudo systemd/install.sh hub --uninstall  remove it again (keeps results and edited config)
#   sudo systemd/install.sh hub --uninstall --purge   also remove the config and the results
#
# What it does (and undoes):
#   apt prerequisites                    python3 and python3-venv, when they are missing
#   /opt/buzzer-beater                   a virtual environment made with the system's python3
#                                        (3.11 or newer), holding the package built from a
#                                        temporary copy of this checkout; one environment for
#                                        hub and node, with what each installed role needs
#                                        (a node: lgpio, the GPIO library gpiozero uses)
#   /etc/buzzer-beater/ROLE.toml         the config (mode 0640, root only), copied once; an edited
#                                        file is never replaced. The service gets a private copy
#                                        at each start (LoadCredential= in the unit).
#   /etc/buzzer-beater/ROLE.toml.default the config as shipped, to compare with after an upgrade
#   /etc/systemd/system/buzzer-ROLE.service, enabled (and started, on a live system)
#
# Running it again when nothing changed changes nothing and restarts nothing. A running service
# is restarted only when the installed package, its unit or its config changed.
#
# Options:
#   --wheelhouse DIR  install the package's dependencies from the wheels in DIR only: no package
#                  index is asked (pip --no-index). Build DIR on a connected machine with
#                  systemd/build-wheelhouse.sh (docs/deploy.md, "Installing offline").
#   --root DIR     install into DIR instead of / (for tests and staging). No systemctl call
#                  touches the running system: the unit is enabled with `systemctl --root`. The
#                  virtual environment's scripts name their interpreter by its path under DIR,
#                  so build a real SD card image inside a chroot, not with --root.
#   --apt / --no-apt   install missing apt prerequisites, or never call apt-get. The default is
#                  --apt on this machine as root, --no-apt with --root.
#   --tournament   hub only: also install the PostgreSQL driver (psycopg) a room hub needs to
#                  send its results to the tournament's database; kept on later runs.
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
MIN_PYTHON=3.11

say() { printf 'install.sh: %s\n' "$*"; }
die() { printf 'install.sh: %s\n' "$*" >&2; exit 1; }
usage() { sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

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
WHEELHOUSE=
APT=
TOURNAMENT=0
while [ $# -gt 0 ]; do
    case $1 in
        --root) [ $# -ge 2 ] || usage; ROOT=${2%/}; shift 2 ;;
        --root=*) ROOT=${1#--root=}; ROOT=${ROOT%/}; shift ;;
        --wheelhouse) [ $# -ge 2 ] || usage; WHEELHOUSE=$2; shift 2 ;;
        --wheelhouse=*) WHEELHOUSE=${1#--wheelhouse=}; shift ;;
        --apt) APT=1; shift ;;
        --no-apt) APT=0; shift ;;
        --tournament) TOURNAMENT=1; shift ;;
        --uninstall) UNINSTALL=1; shift ;;
        --purge) PURGE=1; shift ;;
        *) usage ;;
    esac
done
[ "$PURGE" = 0 ] || [ "$UNINSTALL" = 1 ] || die "--purge only goes with --uninstall"
[ "$TOURNAMENT" = 0 ] || [ "$ROLE" = hub ] || die "--tournament is for a hub: sudo $0 hub --tournament"
if [ -n "$WHEELHOUSE" ]; then
    [ -d "$WHEELHOUSE" ] || die "--wheelhouse $WHEELHOUSE: no such directory"
    WHEELHOUSE=$(cd "$WHEELHOUSE" && pwd)
fi
if [ -n "$ROOT" ]; then
    mkdir -p "$ROOT"
    ROOT=$(cd "$ROOT" && pwd)
    LIVE=0
    [ -n "$APT" ] || APT=0
else
    [ "$(id -u)" = 0 ] || die "run it as root: sudo $0 $ROLE"
    LIVE=0
    [ -d /run/systemd/system ] && LIVE=1
    [ -n "$APT" ] || APT=1
fi

UNIT=buzzer-$ROLE.service
VENV=$ROOT$PREFIX
CONFIG=$ROOT$CONF/$ROLE.toml
UNIT_FILE=$ROOT$UNITS/$UNIT
# What the environment holds: the source fingerprint, then the extras, one line each.
STAMP=$VENV/.installed-from
# Which roles use the environment, one a line: the environment holds what all of them need.
ROLES=$VENV/.roles
# Per role: the fingerprint of package, unit and config its running service was started with.
APPLIED=$VENV/.applied

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
        find pyproject.toml wire hub firmware -type f ! -path '*/__pycache__/*' ! -name '*.pyc' \
            | LC_ALL=C sort | xargs sha256sum
    ) | sha256sum | cut -d' ' -f1
}

# The package extras the installed roles need, e.g. "[node]"; empty for the hub alone. A hub
# installed with --tournament adds the PostgreSQL driver ("tournament" in the roles file).
extras_for_roles() {
    wanted=""
    grep -qx node "$ROLES" 2>/dev/null && wanted="node"
    if grep -qx tournament "$ROLES" 2>/dev/null; then
        wanted="${wanted:+$wanted,}tournament"
    fi
    [ -z "$wanted" ] || echo "[$wanted]"
}

systemctl_root() {
    if command -v systemctl >/dev/null 2>&1; then
        systemctl --root="$ROOT" --quiet "$@"
    else
        return 1
    fi
}

# python3 and its venv module (with ensurepip, which Debian splits into python3-venv).
python_ready() {
    [ -x "$PYTHON" ] && "$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1
}

apt_prerequisites() {
    python_ready && return 0
    if [ "$APT" = 1 ] && [ "$PYTHON" = /usr/bin/python3 ] && command -v apt-get >/dev/null 2>&1; then
        say "installing python3 and python3-venv with apt-get"
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y --no-install-recommends python3 python3-venv \
            || { apt-get update && apt-get install -y --no-install-recommends python3 python3-venv; } \
            || die "apt-get could not install python3 python3-venv; without a network, install them from the distribution's media"
    fi
    [ -x "$PYTHON" ] || die "$PYTHON not found; install it: apt install python3 python3-venv"
    python_ready || die "$PYTHON has no venv module; install it: apt install python3-venv"
}

check_python_version() {
    "$PYTHON" -c "import sys; sys.exit(sys.version_info < ($(echo "$MIN_PYTHON" | tr . ,)))" \
        && return 0
    found=$("$PYTHON" -c 'import platform; print(platform.python_version())' 2>/dev/null || echo unknown)
    die "Python $MIN_PYTHON or newer is needed, $PYTHON is $found (Raspberry Pi OS Bookworm has 3.11)"
}

# pip inside the environment. With a wheelhouse: that directory only, no index, and no pip
# configuration or environment variable that could name another place to look.
venv_pip() {
    if [ -n "$WHEELHOUSE" ]; then
        PIP_CONFIG_FILE=/dev/null "$VENV/bin/python3" -m pip --isolated --disable-pip-version-check \
            "$@" --no-index --find-links "$WHEELHOUSE"
    else
        "$VENV/bin/python3" -m pip --disable-pip-version-check "$@"
    fi
}

# Build a wheel from a temporary copy of the checkout and install it: nothing is written into
# the checkout (no root-owned build/ or egg-info), and a module deleted from the source is
# deleted from the environment too (pip removes every file of the previous install).
install_package() {
    extras=$1
    tmp=$(mktemp -d)
    # shellcheck disable=SC2064
    trap "rm -rf '$tmp'" EXIT
    mkdir "$tmp/src" "$tmp/dist"
    (cd "$SRC" && tar --exclude=__pycache__ --exclude='*.pyc' --exclude='*.egg-info' \
        -cf - pyproject.toml README.md wire hub firmware) | tar -C "$tmp/src" -xf -
    venv_pip wheel --quiet --no-deps --wheel-dir "$tmp/dist" "$tmp/src" \
        || die "building the package failed (see pip's message above)${WHEELHOUSE:+; does $WHEELHOUSE hold setuptools and wheel? build it with systemd/build-wheelhouse.sh}"
    wheel=$(ls "$tmp"/dist/buzzer_beater-*.whl)
    # The dependencies first: should one be missing, the installed package stays as it was.
    venv_pip install --quiet "$wheel$extras" \
        || die "installing the dependencies failed (see pip's message above)${WHEELHOUSE:+; $WHEELHOUSE lacks a wheel for this machine (rebuild it for $(uname -m))}"
    venv_pip install --quiet --no-deps --force-reinstall "$wheel" \
        || die "installing the package failed (see pip's message above)"
    rm -rf "$tmp"
    trap - EXIT
}

# The fingerprint a running service of role $1 was started with: the package, the unit with its
# drop-ins (buzzer-ROLE.service.d/*.conf), and the config.
applied_hash() {
    {
        head -n 1 "$STAMP" 2>/dev/null || true
        cat "$ROOT$UNITS/buzzer-$1.service" "$ROOT$CONF/$1.toml" 2>/dev/null || true
        for drop_in in "$ROOT$UNITS/buzzer-$1.service.d"/*.conf; do
            if [ -f "$drop_in" ]; then
                printf '%s\n' "$drop_in"
                cat "$drop_in"
            fi
        done
    } | sha256sum | cut -d' ' -f1
}

# On a live system: start every installed role's service that is not running, and restart one
# whose package, unit or config changed since it was started by this script. Nothing else.
apply_live() {
    systemctl daemon-reload
    mkdir -p "$APPLIED"
    for role in hub node; do
        unit=buzzer-$role.service
        [ -e "$UNITS/$unit" ] || continue
        now=$(applied_hash "$role")
        if [ "$role" = "$ROLE" ]; then
            systemctl enable --quiet "$unit"
        fi
        if [ "$(cat "$APPLIED/$role" 2>/dev/null)" = "$now" ]; then
            # Unchanged: a running service is left alone; a stopped one of this role is started.
            if [ "$role" = "$ROLE" ] && ! systemctl is-active --quiet "$unit"; then
                systemctl start "$unit"
                say "started $unit"
            fi
        elif [ "$role" = "$ROLE" ]; then
            systemctl restart "$unit"
            say "started $unit with what changed; follow it with: journalctl -u $unit -f"
        elif systemctl is-active --quiet "$unit"; then
            systemctl restart "$unit"
            say "restarted $unit: the package it runs changed"
        fi
        printf '%s\n' "$now" >"$APPLIED/$role"
    done
}

enable_unit() {
    if [ -n "$ROOT" ]; then
        if ! systemctl_root enable "$UNIT"; then
            wants=$ROOT$UNITS/multi-user.target.wants
            mkdir -p "$wants"
            [ -L "$wants/$UNIT" ] || ln -s "$UNITS/$UNIT" "$wants/$UNIT"
        fi
    elif [ "$LIVE" = 1 ]; then
        apply_live
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
    apt_prerequisites
    check_python_version

    # One environment for every role on this machine, without the system's packages: all of
    # them, lgpio included, come as wheels (from PyPI, or from the wheelhouse).
    if [ ! -x "$VENV/bin/python3" ]; then
        set -- -m venv
        [ "$SKIP_PIP" = 1 ] && set -- "$@" --without-pip
        "$PYTHON" "$@" "$VENV" \
            || die "could not create $VENV; on Debian: apt install python3-venv"
        say "created the virtual environment $VENV"
    fi
    grep -qx "$ROLE" "$ROLES" 2>/dev/null || printf '%s\n' "$ROLE" >>"$ROLES"
    if [ "$TOURNAMENT" = 1 ]; then
        grep -qx tournament "$ROLES" 2>/dev/null || printf 'tournament\n' >>"$ROLES"
    fi
    if [ "$SKIP_PIP" = 1 ]; then
        say "BUZZER_INSTALL_SKIP_PIP=1: not installing the package into $VENV"
    else
        extras=$(extras_for_roles)
        wanted=$(printf '%s\n%s\n' "$(source_hash)" "$extras")
        if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$wanted" ]; then
            [ -x "$VENV/bin/pip" ] || "$VENV/bin/python3" -m ensurepip --upgrade >/dev/null
            install_package "$extras"
            printf '%s\n' "$wanted" >"$STAMP"
            say "installed buzzer-beater$extras from $SRC into $VENV${WHEELHOUSE:+ (offline, from $WHEELHOUSE)}"
        fi
    fi

    # The config: the first install copies it; later ones never touch an edited file. It may
    # hold tokens: root alone reads it, and the service gets its own copy (LoadCredential=).
    mkdir -p "$ROOT$CONF"
    put "$shipped" "$CONFIG.default" 0640
    if [ ! -e "$CONFIG" ]; then
        install -m 0640 "$shipped" "$CONFIG"
        say "installed $CONFIG: edit it, then: systemctl restart $UNIT"
    fi
    for file in "$CONFIG" "$CONFIG.default"; do
        if [ -n "$(find "$file" -perm /0137)" ]; then
            chmod 0640 "$file"
            say "made $file readable by root only (mode 0640): it may hold tokens"
        fi
    done

    if [ "$ROLE" = node ] && [ -z "$ROOT" ]; then
        # Raspberry Pi OS has both (gpio owns /dev/gpiochip*, input /dev/input/event*); elsewhere
        # the unit needs them to exist to start.
        for group in gpio input; do
            if ! getent group "$group" >/dev/null; then
                groupadd --system "$group"
                say "created the $group group (this machine had none)"
            fi
        done
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
    rm -f "$APPLIED/$ROLE"
    rmdir "$APPLIED" 2>/dev/null || true

    # The environment is shared by hub and node: remove it with the last of them.
    other=buzzer-hub.service
    [ "$ROLE" = hub ] && other=buzzer-node.service
    if [ ! -e "$ROOT$UNITS/$other" ] && [ -d "$VENV" ]; then
        rm -rf "$VENV"
        say "removed $VENV"
    elif [ -f "$ROLES" ]; then
        # What the other role needs stays installed; the next install of it uses this list.
        # (the tournament driver goes with the hub).
        grep -vx -e "$ROLE" $([ "$ROLE" = hub ] && echo "-e tournament") "$ROLES" >"$ROLES.new" \
            || true
        mv "$ROLES.new" "$ROLES"
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
