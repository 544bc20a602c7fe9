#!/usr/bin/env bash
# The demo: Mosquitto and InfluxDB as child processes on free loopback ports,
# simulated courtyard nodes through the real node code, ingest, analysis and
# patrol plan. Extra arguments go to the demo (see --help).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$root"
deploy/local/bootstrap.sh demo
# the demo is the package deploy/local/demo/, run as a module
PYTHONPATH="$root/deploy/local${PYTHONPATH:+:$PYTHONPATH}" exec "$root/.venv/bin/python" -m demo "$@"
