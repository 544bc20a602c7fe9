#!/usr/bin/env bash
# Prepare this checkout to run the demo or the tests on Debian 12, Ubuntu 24.04
# or Raspberry Pi OS: Debian packages (installed when run as root, otherwise the
# exact apt-get line is printed and we exit 1), then a virtual environment in
# .venv with klankkast and the extras the purpose needs.
#
#   deploy/local/bootstrap.sh demo|test
set -euo pipefail

purpose=${1:?usage: bootstrap.sh demo|test}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

debs=(python3 python3-venv mosquitto influxdb libportaudio2 alsa-utils)
extras="sensor,central"
if [[ $purpose == test ]]; then
    debs+=(mosquitto-clients pulseaudio pulseaudio-utils libasound2-plugins chromium openssl)
    extras="sensor,central,dev"
fi

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
if [[ ! -f $stamp || $root/pyproject.toml -nt $stamp ]]; then
    echo "klankkast: installing klankkast[$extras] into $venv" >&2
    "$venv/bin/python" -m pip install -q --upgrade pip >&2
    "$venv/bin/python" -m pip install -q -e "$root[$extras]" >&2
    touch "$stamp"
fi
