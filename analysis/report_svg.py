"""Small inline SVG plots for the report: level traces and week heat maps (pure).

Hand-written SVG rather than matplotlib PNG: one trace costs microseconds and a few
kilobytes, so a report with every complaint's and visit's trace stays fast and
small, and it prints sharp at any scale (A4 included).

Colours are the Okabe-Ito palette (Okabe & Ito 2008, *Color Universal Design*),
distinguishable with the common colour-vision deficiencies; lines also differ in
dash pattern, so the trace reads in black and white too. Heat maps use a
single-hue sequential ramp (light to dark blue) whose lightness alone carries the
value, and their legends label whole numbers only where the values are counts.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["COLOURS", "Trace", "heatmap_svg", "integer_ticks", "trace_svg"]

#: Okabe-Ito colours by role
COLOURS = {
    "laeq": "#000000",
    "residual": "#0072B2",
    "limit": "#D55E00",
    "episode": "#E69F00",
    "marker": "#CC79A7",
}

F64 = NDArray[np.float64]


@dataclass(frozen=True)
class Trace:
    """What one level trace shows (times UTC ms; levels dB(A); NaN = not measured).

    ``t_ms`` are minute starts; ``laeq_db`` the LAeq of each minute, ``residual_db``
    the residual level and ``limit_db`` the limit of the period in force.
    ``episodes`` are ``(start_ms, end_ms)`` spans to shade; ``marker_ms`` the moment
    the trace is about (the incident start or the arrival), drawn as a vertical line;
    ``labels`` the clock times written under the x-axis, ``(t_ms, text)``.
    """

    t_ms: NDArray[np.int64]
    laeq_db: F64
    residual_db: F64
    limit_db: F64
    t0_ms: int
    t1_ms: int
    episodes: Sequence[tuple[int, int]]
    marker_ms: int
    labels: Sequence[tuple[int, str]]
    title: str = ""


def _path(x: F64, y: F64) -> str:
    """An SVG path through the finite points; gaps (NaN) start a new sub-path."""
    parts: list[str] = []
    pen_up = True
    for xi, yi in zip(x, y, strict=True):
        if not (math.isfinite(xi) and math.isfinite(yi)):
            pen_up = True
            continue
        parts.append(f"{'M' if pen_up else 'L'}{xi:.1f},{yi:.1f}")
        pen_up = False
    return "".join(parts)


def trace_svg(tr: Trace, *, width: int = 560, height: int = 130) -> str:
    """The level trace as an inline ``<svg>``: dB(A) on the y-axis, clock time on x."""
    left, right, top, bottom = 30, 16, 6, 18
    pw, ph = width - left - right, height - top - bottom
    vals = np.concatenate(
        [tr.laeq_db[np.isfinite(tr.laeq_db)], tr.residual_db[np.isfinite(tr.residual_db)],
         tr.limit_db[np.isfinite(tr.limit_db)]]
    )  # fmt: skip
    if vals.size:
        lo = 10.0 * math.floor((float(vals.min()) - 2.0) / 10.0)
        hi = 10.0 * math.ceil((float(vals.max()) + 2.0) / 10.0)
    else:
        lo, hi = 30.0, 70.0
    hi = max(hi, lo + 10.0)
    span = max(1, tr.t1_ms - tr.t0_ms)

    def xs(t: NDArray[np.int64] | F64) -> F64:
        out: F64 = left + (np.asarray(t, dtype=np.float64) - tr.t0_ms) / span * pw
        return out

    def ys(v: F64) -> F64:
        out: F64 = top + (hi - np.asarray(v, dtype=np.float64)) / (hi - lo) * ph
        return out

    el: list[str] = []
    for a, b in tr.episodes:
        xa = float(xs(np.array([max(a, tr.t0_ms)]))[0])
        xb = float(xs(np.array([min(b, tr.t1_ms)]))[0])
        if xb > xa:
            el.append(
                f'<rect x="{xa:.1f}" y="{top}" width="{xb - xa:.1f}" height="{ph}" '
                f'fill="{COLOURS["episode"]}" fill-opacity="0.35"/>'
            )
    # y grid and labels every 10 dB
    for level in np.arange(lo, hi + 0.1, 10.0):
        y = float(ys(np.array([level]))[0])
        el.append(
            f'<line x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd" '
            'stroke-width="0.5"/>'
            f'<text x="{left - 3}" y="{y + 3:.1f}" text-anchor="end">{level:.0f}</text>'
        )
    for t, text in tr.labels:
        xt = float(xs(np.array([t]))[0])
        el.append(
            f'<line x1="{xt:.1f}" x2="{xt:.1f}" y1="{top + ph}" y2="{top + ph + 3}" stroke="#555"/>'
            f'<text x="{xt:.1f}" y="{height - 4}" text-anchor="middle">{html.escape(text)}</text>'
        )
    x_all = xs(tr.t_ms)
    for key, values, dash, w in (
        ("limit", tr.limit_db, "2,2", 1.2),
        ("residual", tr.residual_db, "5,3", 1.2),
        ("laeq", tr.laeq_db, "", 1.3),
    ):
        d = _path(x_all, ys(values))
        if d:
            dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
            el.append(
                f'<path d="{d}" fill="none" stroke="{COLOURS[key]}" stroke-width="{w}"{dash_attr}/>'
            )
    xm = float(xs(np.array([tr.marker_ms]))[0])
    el.append(
        f'<line x1="{xm:.1f}" x2="{xm:.1f}" y1="{top}" y2="{top + ph}" '
        f'stroke="{COLOURS["marker"]}" stroke-width="1.5"/>'
    )
    el.append(
        f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#888" '
        'stroke-width="0.5"/>'
    )
    title = f"<title>{html.escape(tr.title)}</title>" if tr.title else ""
    return (
        f'<svg class="trace" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" font-size="9" '
        f'font-family="sans-serif">{title}{"".join(el)}</svg>'
    )


def integer_ticks(vmax: float, most: int = 5) -> list[int]:
    """Whole-number ticks from 0 to at least ``vmax`` with at most ``most`` + 1 ticks."""
    top = max(1, math.ceil(vmax))
    step = 1
    for s in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000):
        step = s
        if math.ceil(top / s) <= most:
            break
    n = math.ceil(top / step)
    return [k * step for k in range(n + 1)]


def _ramp(frac: float) -> str:
    """Light (#f7fbff) to dark blue (#08306b): lightness carries the value."""
    a = np.array([0xF7, 0xFB, 0xFF], dtype=np.float64)
    b = np.array([0x08, 0x30, 0x6B], dtype=np.float64)
    c = a + (b - a) * min(1.0, max(0.0, frac))
    return "#" + "".join(f"{round(v):02x}" for v in c)


def heatmap_svg(
    data: NDArray[np.float64],
    *,
    title: str,
    weekdays: Sequence[str],
    hour_label: str,
    integer: bool,
    width: int = 340,
) -> str:
    """A 7 x 24 week heat map (Monday first) with its legend, as an inline ``<svg>``.

    ``integer``: the values are counts, the legend shows whole numbers only (other
    values get round steps too, tenths below 5).
    """
    left, top, cell_h = 22, 16, 12
    legend_h = 26
    cell_w = (width - left - 4) / 24.0
    height = top + 7 * cell_h + 14 + legend_h
    vmax = float(np.nanmax(data)) if data.size and np.isfinite(data).any() else 0.0
    # counts on whole numbers; other values on round steps too (0, 50, 100, ...) when
    # they reach 5, else on tenths
    ticks: list[float] = (
        [float(t) for t in integer_ticks(vmax)]
        if integer or vmax >= 5
        else [float(t) / 10 for t in integer_ticks(10 * vmax)]
    )
    top_value = float(ticks[-1]) if ticks[-1] else 1.0
    el = [f'<text x="{left}" y="11" font-weight="bold">{html.escape(title)}</text>']
    for wd in range(7):
        y = top + wd * cell_h
        el.append(
            f'<text x="{left - 3}" y="{y + 9}" text-anchor="end">{html.escape(weekdays[wd])}</text>'
        )
        for h in range(24):
            v = float(data[wd, h])
            el.append(
                f'<rect x="{left + h * cell_w:.1f}" y="{y}" width="{cell_w:.1f}" '
                f'height="{cell_h}" fill="{_ramp(v / top_value)}"><title>{html.escape(weekdays[wd])} '
                f"{h:02d}:00 {v:.0f}</title></rect>"
            )
    y_axis = top + 7 * cell_h + 10
    for h in range(0, 24, 3):
        el.append(
            f'<text x="{left + (h + 0.5) * cell_w:.1f}" y="{y_axis}" text-anchor="middle">{h}</text>'
        )
    el.append(
        f'<text x="{left + 24 * cell_w:.1f}" y="{y_axis}" text-anchor="end">{html.escape(hour_label)}</text>'
    )
    # legend: a bar with ticks at the values named
    ly = y_axis + 6
    lw = width - left - 40
    steps = 40
    for k in range(steps):
        el.append(
            f'<rect x="{left + k * lw / steps:.1f}" y="{ly}" width="{lw / steps + 0.3:.1f}" '
            f'height="7" fill="{_ramp(k / (steps - 1))}"/>'
        )
    for t in ticks:
        x = left + float(t) / top_value * lw
        label = f"{t:g}"
        el.append(f'<text x="{x:.1f}" y="{ly + 17}" text-anchor="middle">{label}</text>')
    return (
        f'<svg class="heat" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" font-size="9" '
        f'font-family="sans-serif">{"".join(el)}</svg>'
    )
