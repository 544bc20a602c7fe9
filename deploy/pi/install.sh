#!/usr/bin/env bash
# klankkast node installer for Raspberry Pi OS bookworm (64-bit).
#
#   sudo deploy/pi/install.sh [--source DIR] [--no-start] [--root DIR]
#
# 1. installs the system packages (PortAudio, ALSA tools, Python venv, NTP client);
# 2. creates the dedicated system user "klankkast" (member of "audio");
# 3. creates the virtual environment /opt/klankkast and installs klankkast[sensor]
#    from DIR (default: the checkout this script is in);
# 4. puts the config at /etc/klankkast/node.toml (from node.example.toml, only when
#    missing: an existing config is never overwritten) and the outbox directory
#    /var/lib/klankkast;
# 5. installs and enables the systemd unit klankkast-sensor.service, and starts it
#    unless the config is still the unedited example or --no-start is given.
#
# Safe to run again (upgrades the package, keeps config, outbox and history).
#
# --root DIR installs below DIR instead of / (an image being built, or a test): no
# system packages, no user, no systemctl (the unit is copied, not enabled). Files
# get the group klankkast when it exists (else the invoking user's).
#
# Secrets (/etc/klankkast/mqtt.password) have one mode: 0640, owner root, group
# klankkast -- the node reads them and cannot change them (deploy/mosquitto/README.md).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SOURCE="$(cd "$HERE/../.." && pwd)"
START=1
ROOT=""

while [ $# -gt 0 ]; do
    case "$1" in
        --source) SOURCE="$2"; shift 2 ;;
        --no-start) START=0; shift ;;
        --root) ROOT="${2%/}"; [ -n "$ROOT" ] || { echo "install.sh: --root needs a directory" >&2; exit 2; }; shift 2 ;;
        -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
        *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done

PREFIX=$ROOT/opt/klankkast
ETC=$ROOT/etc/klankkast
STATE=$ROOT/var/lib/klankkast
UNIT=$ROOT/etc/systemd/system/klankkast-sensor.service
if [ -z "$ROOT" ] && [ "$(id -u)" -ne 0 ]; then
    echo "install.sh: run as root (sudo $0)" >&2
    exit 1
fi
# owner/group options of install(1): root:klankkast on a real system
own() {
    if [ "$(id -u)" -eq 0 ] && getent group klankkast >/dev/null 2>&1 && id "$1" >/dev/null 2>&1; then
        echo "-o $1 -g klankkast"
    fi
}
if [ ! -f "$SOURCE/pyproject.toml" ]; then
    echo "install.sh: --source must be a klankkast checkout (no pyproject.toml in $SOURCE)" >&2
    exit 1
fi
if [ -z "$ROOT" ] && [ -r /etc/os-release ]; then
    . /etc/os-release
    if [ "${VERSION_CODENAME:-}" != "bookworm" ]; then
        echo "install.sh: warning: made for Raspberry Pi OS bookworm; this is ${PRETTY_NAME:-unknown}" >&2
    fi
fi

if [ -z "$ROOT" ]; then
    echo "==> system packages"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends \
        python3 python3-venv python3-pip python3-dev \
        libportaudio2 libasound2 alsa-utils \
        sqlite3 ca-certificates systemd-timesyncd

    echo "==> user klankkast"
    if ! id klankkast >/dev/null 2>&1; then
        useradd --system --home-dir "$STATE" --no-create-home --shell /usr/sbin/nologin \
            --groups audio klankkast
    else
        usermod -a -G audio klankkast
    fi
fi

echo "==> virtual environment $PREFIX"
if [ ! -x "$PREFIX/bin/python" ]; then
    python3 -m venv "$PREFIX"
fi
# exactly the locked versions (requirements/sensor.txt), then klankkast without
# dependencies, so that every node of a fleet runs the same numpy/scipy/paho
"$PREFIX/bin/pip" install -q -r "$SOURCE/requirements/sensor.txt"
"$PREFIX/bin/pip" install -q --no-deps --upgrade "$SOURCE"
install -d -m 0755 "$PREFIX/share"
install -m 0644 "$HERE/README.md" "$PREFIX/share/README-node.md"

echo "==> config $ETC/node.toml, state $STATE"
# shellcheck disable=SC2046  # own prints zero or four words
install -d -m 0750 $(own root) "$ETC"
# shellcheck disable=SC2046
install -d -m 0750 $(own klankkast) "$STATE"
FRESH=0
if [ ! -f "$ETC/node.toml" ]; then
    # shellcheck disable=SC2046
    install -m 0640 $(own root) "$HERE/node.example.toml" "$ETC/node.toml"
    FRESH=1
fi
if [ ! -f "$ETC/mqtt.password" ]; then
    # shellcheck disable=SC2046
    install -m 0640 $(own root) /dev/null "$ETC/mqtt.password"
fi

echo "==> systemd unit"
install -d -m 0755 "$(dirname "$UNIT")"
install -m 0644 "$HERE/klankkast-sensor.service" "$UNIT"
if [ -n "$ROOT" ]; then
    echo "==> done (below $ROOT; the unit is not enabled)"
    exit 0
fi
systemctl daemon-reload
systemctl enable klankkast-sensor.service

if [ "$FRESH" -eq 1 ] || cmp -s "$ETC/node.toml" "$HERE/node.example.toml"; then
    cat <<MSG
==> next steps
  1. edit $ETC/node.toml: [node] id and site, [audio] device (klankkast-sensor devices),
     [mqtt] url, username; put the MQTT password in $ETC/mqtt.password
  2. calibrate:  sudo $PREFIX/bin/klankkast-sensor calibrate --config $ETC/node.toml --reference-db 94.0
  3. check:      sudo $PREFIX/bin/klankkast-sensor check --config $ETC/node.toml
  4. start:      sudo systemctl start klankkast-sensor
MSG
elif [ "$START" -eq 1 ]; then
    systemctl restart klankkast-sensor.service
    systemctl --no-pager --lines=5 status klankkast-sensor.service || true
fi
echo "==> done"
