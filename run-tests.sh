#!/usr/bin/env bash
# The whole test suite: lint, format, types, unit and integration tests against a
# real Mosquitto, a real InfluxDB and real PortAudio (ALSA file plugin and a private
# PulseAudio). Extra arguments go to pytest.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$root"
deploy/local/bootstrap.sh test
export PATH="$root/.venv/bin:$PATH"
ruff check .
ruff format --check .
mypy
pytest "$@"
