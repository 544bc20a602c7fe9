"""The klankkast demo: the whole pipeline on one machine, without a sound card.

    ./run-demo.sh [--short] [--out DIR] [--weeks N]
    PYTHONPATH=deploy/local .venv/bin/python -m demo [...]   (what run-demo.sh runs)

1. Starts a private Mosquitto and InfluxDB 1.x as child processes on free loopback
   ports in temporary directories (``deploy/local/services.py``), so runs never
   collide with each other or with services already running.
2. Starts the real central programs against them: ``klankkast-ingest`` (and
   ``klankkast-alerts`` when installed).
3. Feeds several courtyard nodes over MQTT, in three ways, and says which is which:

   - **real audio through the node code**: a few hours of a Friday night in the
     ``jordaan`` courtyard -- traffic hum, voices, a neighbour's bass-heavy music,
     door slams and a party reverberating in the closed courtyard -- synthesised as
     audio (:mod:`demo.soundscape`) and measured by the node's metrology core
     (``klankkast-sensor simulate --wav``: A/C weighting, Fast/Slow, one-third-octave
     bands, per-second frames and minute summaries);
   - **synthetic 1-s frames** from the node's simulator (``klankkast-sensor simulate``)
     for the last hour of every node, so the "now" dashboards have data;
   - **synthesised levels for most of the period**: per-minute summaries for N weeks
     (default 2), published with the node's wire encoder and MQTT adapter
     (:mod:`demo.frames`), with the scenario's nuisance planted in them (Friday/Saturday parties, a neighbour's music
     on some evenings). Seconds for two weeks would take too long to push through one
     machine; minutes are what the analysis uses.

4. Generates complaints (some time after onset, not for every episode, plus a few
   unfounded ones) and enforcement visits (hours or days later, mostly finding
   nothing) as CSV in the output directory, the way they arrive from a municipality.
   Residents: invitation letters for four households per courtyard
   (``klankkast-courtyard invite``, in ``letters/``) and their "ik heb nu last" marks,
   most of them during planted nuisance, a few when nothing was going on, written by
   the residents' page's own InfluxDB adapter (:mod:`demo.residents`).
5. Runs ``klankkast-analyze report`` and ``klankkast-analyze plan`` on the levels in
   InfluxDB and prints where the report, the plan and the dashboards are, and the
   three headline numbers: corroborated complaints, visit hit rate, plan hit rate.
6. Starts the residents' page (``klankkast-courtyard serve``, showing the plan's
   windows), opens one printed invitation link as a resident's browser would, and
   prints it (the page stays up with ``--keep``).

Everything goes into ``--out`` (default ``demo-out/<UTC timestamp>``); ``summary.json``
there holds the numbers. Child processes are stopped on exit and on Ctrl-C.
``--keep`` leaves Mosquitto and InfluxDB running until Ctrl-C so Grafana can be
pointed at them (the command is printed).

The modules, one question each: :mod:`~demo.scenario` (the period, the planted
nuisance, complaints and visits; pure), :mod:`~demo.frames` (minute and status
messages, and publishing them), :mod:`~demo.audio`, :mod:`~demo.soundscape`,
:mod:`~demo.residents` and :mod:`~demo.residents_page`, :mod:`~demo.children` (the
programs it runs), :mod:`~demo.waits` (for the ingest), :mod:`~demo.files`,
:mod:`~demo.analyze`, :mod:`~demo.summary`, :mod:`~demo.run` (the steps in order) and
:mod:`~demo.cli` (options and ``main``). The servers come from
``deploy/local/services.py``, the stack runner the tests' fixtures use too.
"""

from __future__ import annotations

from ._common import DASHBOARD_UIDS, Options
from .cli import main, parse_args, parse_now
from .files import write_csv
from .frames import WirePublisher, minute_payloads, status_payloads
from .scenario import (
    COMPLAINT_COLUMNS,
    HOUR_MS,
    SITES,
    VISIT_COLUMNS,
    Timeline,
    TrueEpisode,
    iso_local,
    make_reports,
    make_timeline,
    plan_episodes,
)
from .summary import grafana_answers, grafana_lines

__all__ = [
    "COMPLAINT_COLUMNS",
    "DASHBOARD_UIDS",
    "HOUR_MS",
    "SITES",
    "VISIT_COLUMNS",
    "Options",
    "Timeline",
    "TrueEpisode",
    "WirePublisher",
    "grafana_answers",
    "grafana_lines",
    "iso_local",
    "main",
    "make_reports",
    "make_timeline",
    "minute_payloads",
    "parse_args",
    "parse_now",
    "plan_episodes",
    "status_payloads",
    "write_csv",
]
