"""Invitation letters: one printable A4 page per household (nl and en), with link and QR.

Each letter is a self-contained HTML file (inline CSS, the QR code as inline SVG made
by ``segno``; no external resource) that prints on one A4 page from any browser.
An ``index.csv`` lists the invitation ids and file names, never the tokens.
"""

from __future__ import annotations

import csv
import datetime as dt
from html import escape
from pathlib import Path

import segno

__all__ = ["write_letters"]

_CSS = """
@page { size: A4; margin: 15mm 18mm; }
body { font: 10pt/1.4 system-ui, sans-serif; color: #000; max-width: 174mm; margin: 0 auto; }
h1 { font-size: 13pt; margin: 0 0 2mm; } p { margin: 0 0 2mm; }
.access { display: flex; gap: 6mm; align-items: center; margin: 3mm 0 4mm; }
.qr svg { width: 42mm; height: 42mm; display: block; }
.link { font-family: monospace; font-size: 9pt; word-break: break-all; }
.lang { page-break-inside: avoid; } hr { margin: 4mm 0; }
.id { color: #444; font-size: 8.5pt; }
"""

_NL = """<section class="lang" lang="nl">
<h1>Uw binnenplaats, {name}: wat er gemeten wordt, en wat u ervan merkt</h1>
<p>Beste bewoner,</p>
<p>De gemeente meet het geluid op uw binnenplaats. Op een eigen pagina ziet u wat er is gemeten,
kunt u met één tik laten weten wanneer u er last van hebt ("Ik heb nu last"), en ziet u wat de gemeente
ermee deed. Uw meldingen tellen mee in het onderzoek naar geluidshinder, naast klachten en metingen.</p>
<p>Scan de QR-code of typ de link over. Deze link is voor uw huishouden; deel hem niet buiten uw huis.</p>
<p>Er wordt nooit geluid opgenomen. Uw huishouden wordt alleen als een onherleidbare code opgeslagen,
meldingen worden 365 dagen bewaard. Meer staat op de pagina onder "Hoe het werkt".</p>
<p>Verhuist u? Vraag dan de gemeente uitnodiging <strong>{id}</strong> in te trekken.</p>
</section>"""

_EN = """<section class="lang" lang="en">
<h1>Your courtyard, {name}: what is measured, and what you notice</h1>
<p>Dear resident,</p>
<p>The municipality measures the sound in your courtyard. On a page of its own you see what was measured,
you can say with one tap when it bothers you ("It bothers me now"), and you see what the municipality did
with it. Your marks count in the study of noise nuisance, next to complaints and measurements.</p>
<p>Scan the QR code or type the link. This link is for your household; do not share it outside your home.</p>
<p>No audio is ever recorded. Your household is stored only as a code that cannot be traced back, and marks
are kept for 365 days. More under "How it works" on the page.</p>
<p>Moving house? Ask the municipality to withdraw invitation <strong>{id}</strong>.</p>
</section>"""


def write_letters(
    out_dir: Path,
    site: str,
    site_name: str,
    invitations: list[tuple[str, str]],
    base_url: str,
    created: dt.date,
) -> list[Path]:
    """Write ``letter-<id>.html`` per ``(invitation id, token)`` (one A4 page when printed)
    and append to ``index.csv``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for inv_id, token in invitations:
        link = f"{base_url}/i/{token}"
        qr = segno.make(link, error="m").svg_inline(scale=4, border=2, title=link)
        body = "".join(
            (
                '<!doctype html><html lang="nl"><head><meta charset="utf-8">',
                f"<title>klankkast {escape(site)} {inv_id}</title><style>{_CSS}</style></head><body>",
                _NL.format(name=escape(site_name), id=inv_id),
                f'<div class="access"><div class="qr">{qr}</div>',
                f'<p class="link">{escape(link)}</p></div>',
                "<hr>",
                _EN.format(name=escape(site_name), id=inv_id),
                f'<p class="id">{escape(site)} · {inv_id} · {created.isoformat()}</p>',
                "</body></html>\n",
            )
        )
        path = out_dir / f"letter-{inv_id}.html"
        path.write_text(body, encoding="utf-8")
        path.chmod(0o600)
        paths.append(path)
    with (out_dir / "index.csv").open("a", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        if f.tell() == 0:
            w.writerow(["invitation", "site", "created", "file"])
        for (inv_id, _), path in zip(invitations, paths, strict=True):
            w.writerow([inv_id, site, created.isoformat(), path.name])
    return paths
