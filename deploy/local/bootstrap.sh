#!/usr/bin/env bash
# Prepare this checkout to run the demo or the tests on Debian 12, Ubuntu 24.04
# or Raspberry Pi OS: Debian packages (installed when run as root, otherwise the
# exact apt-get line is printed and we exit 1), then a virtual environment in
# .venv with exactly the locked versions of what the purpose needs
# (requirements/central.txt for the demo, requirements/dev.txt for the tests;
# refreshed with deploy/local/lock.sh) and klankkast itself, editable.
#
#   deploy/local/bootstrap.sh demo|test
set -euo pipefail

purpose=${1:?usage: bootstrap.sh demo|test}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

debs=(python3 python3-venv mosquitto influxdb libportaudio2 alsa-utils)
lock=central
if [[ $purpose == test ]]; then
    debs+=(mosquitto-clients pulseaudio pulseaudio-utils libasound2-plugins chromium openssl nginx)
    lock=dev
fi
# the demo runs simulated nodes too: the sensor extra is part of the central lock
# only through its shared packages, so install it from its own lock as well
locks=("$root/requirements/$lock.txt")
[[ $lock == central ]] && locks+=("$root/requirements/sensor.txt")

missing=()
for pkg in "${debs[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$pkg")
    fi
done
if ((${#missing[@]})); then
    if [[ $(id -u) -eq 0 ]]; then
        echo "klankkast: installing Debian packages: ${missing[*]}" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        # policy-rc.d keeps the packaged services from starting: klankkast runs
        # its own instances on free loopback ports.
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
    else
        echo "klankkast: missing Debian packages. Install them with:" >&2
        echo "  sudo apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
fi

venv="$root/.venv"
py=${PYTHON:-python3}
if [[ ! -x $venv/bin/python ]]; then
    echo "klankkast: creating virtual environment in $venv" >&2
    "$py" -m venv "$venv"
fi
stamp="$venv/.klankkast-$purpose"
stale=0
[[ -f $stamp ]] || stale=1
for f in "$root/pyproject.toml" "${locks[@]}"; do
    [[ $f -nt $stamp ]] && stale=1
done
if ((stale)); then
    echo "klankkast: installing the locked versions of ${locks[*]#"$root/"} into $venv" >&2
    pip=("$venv/bin/python" -m pip --disable-pip-version-check)
    reqs=()
    for f in "${locks[@]}"; do reqs+=(-r "$f"); done
    "${pip[@]}" install -q "${reqs[@]}" >&2
    # klankkast itself, without dependencies: the lock alone decides versions
    "${pip[@]}" install -q --no-deps -e "$root" >&2
    touch "$stamp"
fi
