"""Server-rendered SVG chart of the day view; pure (no JavaScript, no third-party fonts).

LAeq per minute as a line (gaps where nothing was measured), the limit of each period
as a dashed step line, the usual background as a dotted line, episodes as shaded
bands, and rows of markers for residents' marks, alerts sent, patrol windows and
visits. The same facts are listed in text below the chart on the page.
"""

from __future__ import annotations

import datetime as dt
import math
from html import escape
from typing import Final
from zoneinfo import ZoneInfo

from klankkast.courtyard.model import DayView

__all__ = ["day_svg"]

_W: Final = 780
_H: Final = 300
_L: Final = 112  # left margin (axis and row labels)
_R: Final = 10
_T: Final = 10
_B: Final = 90  # bottom: time axis and the event rows
_LO_DB: Final = 20.0
_HI_DB: Final = 90.0


def day_svg(view: DayView, tz: ZoneInfo, labels: dict[str, str]) -> str:
    """The chart as an ``<svg>`` element string (``labels``: title, marks, alerts,
    patrols, visits, background, limit)."""
    span = max(1, view.end_ms - view.start_ms)
    plot_w = _W - _L - _R
    plot_h = _H - _T - _B

    def x(t_ms: int) -> float:
        return _L + plot_w * (t_ms - view.start_ms) / span

    def y(level_db: float) -> float:
        v = min(_HI_DB, max(_LO_DB, level_db))
        return _T + plot_h * (_HI_DB - v) / (_HI_DB - _LO_DB)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_W} {_H}" role="img" '
        f'aria-labelledby="chart-title" class="chart">',
        f'<title id="chart-title">{escape(labels["title"])}</title>',
    ]
    # episodes
    for e in view.episodes:
        out.append(
            f'<rect class="episode" x="{x(e.start_ms):.1f}" y="{_T}" '
            f'width="{max(1.0, x(e.end_ms) - x(e.start_ms)):.1f}" height="{plot_h}"/>'
        )
    # grid and level axis
    for level in range(30, 91, 10):
        out.append(
            f'<line class="grid" x1="{_L}" x2="{_W - _R}" y1="{y(level):.1f}" y2="{y(level):.1f}"/>'
            f'<text class="axis" x="{_L - 4}" y="{y(level) + 4:.1f}" text-anchor="end">{level}</text>'
        )
    out.append(
        f'<text class="axis" x="{_L - 4}" y="{_T + plot_h + 14}" text-anchor="end">dB(A)</text>'
    )
    # time axis: every 3 local hours
    t0 = dt.datetime.fromtimestamp(view.start_ms / 1000, tz)
    tick = t0.replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1)
    while int(tick.timestamp() * 1000) < view.end_ms:
        t_ms = int(tick.timestamp() * 1000)
        if tick.hour % 3 == 0:
            out.append(
                f'<line class="grid" x1="{x(t_ms):.1f}" x2="{x(t_ms):.1f}" y1="{_T}" y2="{_T + plot_h}"/>'
                f'<text class="axis" x="{x(t_ms):.1f}" y="{_T + plot_h + 14}" '
                f'text-anchor="middle">{tick.strftime("%H:%M")}</text>'
            )
        tick = (tick.astimezone(dt.UTC) + dt.timedelta(hours=1)).astimezone(tz)
    # limits per period (step line)
    for s in view.segments:
        out.append(
            f'<line class="limit" x1="{x(s.start_ms):.1f}" x2="{x(s.end_ms):.1f}" '
            f'y1="{y(s.limit_db):.1f}" y2="{y(s.limit_db):.1f}"/>'
        )
    if math.isfinite(view.background_db):
        out.append(
            f'<line class="background" x1="{_L}" x2="{_W - _R}" '
            f'y1="{y(view.background_db):.1f}" y2="{y(view.background_db):.1f}"/>'
        )
    # LAeq per minute, broken where a minute is missing
    paths: list[list[str]] = []
    prev_t: int | None = None
    for m in view.minutes:
        if prev_t is None or m.t_ms - prev_t > 60_000:
            paths.append([])
        paths[-1].append(f"{x(m.t_ms):.1f},{y(m.laeq_db):.1f}")
        prev_t = m.t_ms
    for pts in paths:
        if len(pts) == 1:
            cx, cy = pts[0].split(",")
            out.append(f'<circle class="level-dot" cx="{cx}" cy="{cy}" r="1.5"/>')
        else:
            out.append(f'<polyline class="level" points="{" ".join(pts)}"/>')
    # minutes above their limit, drawn over the line
    for m, above in zip(view.minutes, view.above, strict=True):
        if above:
            out.append(
                f'<circle class="above" cx="{x(m.t_ms):.1f}" cy="{y(m.laeq_db):.1f}" r="1.6"/>'
            )
    # event rows
    rows = [
        ("marks", view.marks_ms, "mark"),
        ("alerts", view.alerts_ms, "alert"),
        ("visits", view.visits_ms, "visit"),
    ]
    base = _T + plot_h + 26
    for k, (label, times, cls) in enumerate(rows):
        yy = base + 14 * k
        out.append(
            f'<text class="axis" x="{_L - 4}" y="{yy + 4}" text-anchor="end">{escape(labels[label])}</text>'
        )
        for t_ms in times:
            out.append(f'<circle class="{cls}" cx="{x(t_ms):.1f}" cy="{yy}" r="3.5"/>')
    yy = base + 14 * len(rows)
    out.append(
        f'<text class="axis" x="{_L - 4}" y="{yy + 4}" text-anchor="end">{escape(labels["patrols"])}</text>'
    )
    for p in view.patrols:
        out.append(
            f'<rect class="patrol" x="{x(p.start_ms):.1f}" y="{yy - 4}" '
            f'width="{max(2.0, x(p.end_ms) - x(p.start_ms)):.1f}" height="8"/>'
        )
    out.append("</svg>")
    return "".join(out)
