#!/usr/bin/env bash
# Refresh the locks in requirements/ from pyproject.toml: the exact versions every
# install uses (run-demo.sh, run-tests.sh, CI, deploy/pi/install.sh, the central
# image). One universal resolution per purpose, valid on Python 3.11-3.13, on
# x86_64 and on the Raspberry Pi's aarch64, with one version of each package for
# all of them, and the same version in every lock:
#
#   requirements/sensor.txt   klankkast[sensor]                a node
#   requirements/central.txt  klankkast[central]               the central server
#   requirements/dev.txt      klankkast[sensor,central,dev]    tests and benchmarks
#
# Usage: deploy/local/lock.sh [--upgrade]   (uv comes from the test venv: run
# ./run-tests.sh once first). tests/unit/project/test_project_lock.py fails while
# pyproject.toml and the locks disagree.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
uv=${UV:-$root/.venv/bin/uv}
if [[ ! -x $uv ]]; then
    echo "lock.sh: $uv not found; run ./run-tests.sh once (it installs uv into .venv) or set UV=/path/to/uv" >&2
    exit 1
fi
cd "$root"
compile() {
    local out=$1
    shift
    "$uv" pip compile pyproject.toml "$@" --universal --python-version 3.11 \
        --fork-strategy fewest --no-header --quiet "${upgrade[@]}" -o "$out"
}
upgrade=()
[[ ${1:-} == --upgrade ]] && upgrade=(--upgrade)
# dev (everything) first; the node and central locks are then constrained to its
# versions, so that one venv can hold any of them (the demo's and the tests' share .venv)
compile requirements/dev.txt --extra sensor --extra central --extra dev
upgrade=()
compile requirements/sensor.txt --extra sensor --constraint requirements/dev.txt
compile requirements/central.txt --extra central --constraint requirements/dev.txt
echo "lock.sh: requirements/{sensor,central,dev}.txt written" >&2
