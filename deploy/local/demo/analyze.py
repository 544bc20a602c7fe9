"""The analysis step of the demo: ``klankkast-analyze report`` on the levels in
InfluxDB (or, should reading them fail, on an export of the same levels), then
``klankkast-analyze plan``, then the report again with the plan's section."""

from __future__ import annotations

from pathlib import Path

from services import Influx

from ._common import DB, DemoError, Options, say
from .children import run_step, tool
from .files import export_levels_csv
from .scenario import Timeline, iso_local

__all__ = ["analyze"]


def analyze(
    opts: Options, tl: Timeline, influx: Influx, out: Path, complaints_csv: Path, visits_csv: Path
) -> tuple[Path, Path, str]:
    """Report and plan in ``out/report`` and ``out/plan``, levels.csv beside them;
    returns (report dir, plan dir, why the plan failed or "")."""
    logs = out / "logs"
    levels_url = f"influxdb+{influx.url}/{DB}"
    analyze_cmd = tool("klankkast-analyze")
    report_dir = out / "report"
    plan_dir = out / "plan"
    # the period of the simulated history, so that neither depends on the clock
    period = ["--from", iso_local(tl.start_ms), "--to", iso_local(tl.end_ms)]
    say(f"klankkast-analyze report --levels {levels_url} ...")
    report_cmd = [*analyze_cmd, "report", "--complaints", str(complaints_csv),
                  "--visits", str(visits_csv), "--out", str(report_dir), "--lang", "nl",
                  "--influx", levels_url, *period, "--quiet"]  # fmt: skip
    try:
        run_step(
            "klankkast-analyze report", [*report_cmd, "--levels", levels_url], logs / "report.log"
        )
    except DemoError as err:
        # fall back to a CSV export of the same levels (the analysis' other input)
        levels_csv = export_levels_csv(influx, out / "levels.csv", tl.start_ms, tl.end_ms)
        say(
            f"  reading levels from InfluxDB failed ({str(err).splitlines()[-1][:160]}); "
            f"using an export of the same levels: {levels_csv.name}"
        )
        levels_url = str(levels_csv)
        run_step(
            "klankkast-analyze report", [*report_cmd, "--levels", levels_url], logs / "report.log"
        )
    if not (out / "levels.csv").exists():
        # the levels next to the outputs: report and plan can be re-run after the demo
        export_levels_csv(influx, out / "levels.csv", tl.start_ms, tl.end_ms)
    say("klankkast-analyze plan ...")
    plan_error = ""
    plan_cmd = [*analyze_cmd, "plan", "--levels", levels_url, "--visits", str(visits_csv),
                "--capacity", str(opts.capacity), "--duration", str(opts.plan_minutes),
                "--weeks", str(max(1, opts.weeks - 1)), *period, "--now", iso_local(tl.end_ms),
                "--out", str(plan_dir)]  # fmt: skip
    try:
        run_step("klankkast-analyze plan", plan_cmd, logs / "plan.log")
    except DemoError as err:
        # the report and the numbers still stand; say plainly what is missing
        plan_error = str(err).splitlines()[0]
        say(f"  the patrol plan failed: {plan_error}")
    if not plan_error:
        # the report again, now with the plan's section
        run_step(
            "klankkast-analyze report",
            [*report_cmd, "--levels", levels_url, "--plan", str(plan_dir / "plan.json")],
            logs / "report.log",
        )
    return report_dir, plan_dir, plan_error
