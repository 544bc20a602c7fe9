"""The words of the courtyard page in Dutch (default) and English; pure.

:func:`t` looks a phrase up; :func:`describe_now` turns a
:class:`~klankkast.courtyard.model.NowReading` into the sentence shown after a mark
("58 dB(A), above the evening limit of 45; the municipality has been alerted at
23:12"). Levels are rounded to whole dB for residents.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Final
from zoneinfo import ZoneInfo

from klankkast.courtyard.model import NowReading

__all__ = ["ERROR_PAGES", "KINDS", "LANGS", "clock", "day_label", "describe_now", "t"]

LANGS: Final = ("nl", "en")
KINDS: Final = ("music", "voices", "bangs", "machine", "other")

_T: Final[dict[str, tuple[str, str]]] = {
    "site_title": ("Geluid in {name}", "Sound in {name}"),
    "nav_today": ("Afgelopen nacht en vandaag", "Last night and today"),
    "nav_week": ("Deze week", "This week"),
    "nav_how": ("Hoe het werkt", "How it works"),
    "lang_other": ("English", "Nederlands"),
    "mark_button": ("Ik heb nu last", "It bothers me now"),
    "mark_optional": (
        "Optioneel: wat hoort u, en hoe erg is het?",
        "Optional: what do you hear, and how bad is it?",
    ),
    "kind": ("Soort geluid", "Kind of sound"),
    "kind_music": ("muziek", "music"),
    "kind_voices": ("stemmen", "voices"),
    "kind_bangs": ("knallen of bonken", "bangs"),
    "kind_machine": ("machine of installatie", "machine"),
    "kind_other": ("iets anders", "other"),
    "severity": (
        "Hoe erg (1 = een beetje, 5 = ondraaglijk)",
        "How bad (1 = a little, 5 = unbearable)",
    ),
    "thanks": ("Dank u, uw melding is geteld.", "Thank you, your mark has been counted."),
    "added": ("Dank u, uw melding is aangevuld.", "Thank you, your mark has been completed."),
    "add_detail": ("Aanvullen", "Add to my mark"),
    "already": (
        "Uw huishouden heeft om {time} al gemeld; een huishouden telt één keer per 10 minuten. Deze melding is niet opnieuw geteld.",
        "Your household already marked at {time}; a household counts once per 10 minutes. This mark was not counted again.",
    ),
    "now_above": (
        "Nu gemeten: {level} dB(A), boven de {period}grens van {limit}.",
        "Measured now: {level} dB(A), above the {period} limit of {limit}.",
    ),
    "now_audible": (
        "Nu gemeten: {level} dB(A), onder de {period}grens van {limit}, maar boven het gewone achtergrondgeluid van {background}.",
        "Measured now: {level} dB(A), below the {period} limit of {limit}, but above the usual background of {background}.",
    ),
    "now_quiet": (
        "In de laatste 10 minuten is niets boven het gewone achtergrondgeluid gemeten (nu {level} dB(A)).",
        "Nothing above the usual background was measured in the last 10 minutes (now {level} dB(A)).",
    ),
    "now_nodata": (
        "De sensor heeft de laatste 10 minuten geen meting doorgegeven.",
        "The sensor has sent no measurement in the last 10 minutes.",
    ),
    "alerted": (
        "De gemeente is om {time} gewaarschuwd.",
        "The municipality has been alerted at {time}.",
    ),
    "not_alerted": (
        "Er loopt nu geen waarschuwing aan de gemeente.",
        "No alert to the municipality is going on now.",
    ),
    "period_day": ("dag", "day"),
    "period_evening": ("avond", "evening"),
    "period_night": ("nacht", "night"),
    "back": ("Terug naar de pagina", "Back to the page"),
    "chart_title": (
        "Geluidsniveau per minuut (LAeq, dB(A)) van de afgelopen 24 uur, met de grens per periode, het gewone achtergrondgeluid, episodes, meldingen van bewoners, waarschuwingen, surveillances en bezoeken",
        "Sound level per minute (LAeq, dB(A)) over the last 24 hours, with the limit of each period, the usual background, episodes, residents' marks, alerts, patrols and visits",
    ),
    "row_marks": ("meldingen", "marks"),
    "row_alerts": ("gewaarschuwd", "alerts"),
    "row_patrols": ("surveillance", "patrols"),
    "row_visits": ("bezoeken", "visits"),
}


_WEEKDAYS: Final = (
    ("ma", "di", "wo", "do", "vr", "za", "zo"),
    ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"),
)


def day_label(day: dt.date, lang: str) -> str:
    """``do 11-06`` / ``Thu 11-06``: weekday and date without the machine's locale."""
    return f"{_WEEKDAYS[1 if lang == 'en' else 0][day.weekday()]} {day:%d-%m}"


def t(key: str, lang: str, **kw: object) -> str:
    """The phrase ``key`` in ``lang`` (``nl`` or ``en``), formatted with ``kw``."""
    text = _T[key][1 if lang == "en" else 0]
    return text.format(**kw) if kw else text


def clock(t_ms: int, tz: ZoneInfo) -> str:
    """Local ``HH:MM``."""
    return dt.datetime.fromtimestamp(t_ms / 1000, tz).strftime("%H:%M")


def _db(x: float) -> str:
    return f"{x:.0f}" if math.isfinite(x) else "-"


def describe_now(reading: NowReading, lang: str, tz: ZoneInfo) -> list[str]:
    """The sentences about the reading: the level and its meaning, then the alert."""
    period = t(f"period_{reading.period}", lang)
    kw = {
        "level": _db(reading.level_db),
        "period": period,
        "limit": _db(reading.limit_db),
        "background": _db(reading.background_db),
    }
    out = [t(f"now_{reading.state}", lang, **kw)]
    if reading.alerted_ms is not None:
        out.append(t("alerted", lang, time=clock(reading.alerted_ms, tz)))
    else:
        out.append(t("not_alerted", lang))
    return out


#: the error pages: what -> (nl title, nl text, en title, en text)
ERROR_PAGES: Final[dict[str, tuple[str, str, str, str]]] = {
    "no_session": (
        "Open eerst uw uitnodiging",
        "Deze pagina is alleen voor bewoners van de binnenplaats. Open de link of scan de QR-code uit uw brief.",
        "Open your invitation first",
        "This page is only for the residents of the courtyard. Open the link or scan the QR code in your letter.",
    ),
    "unknown": (
        "Deze uitnodiging is niet geldig",
        "Deze link hoort niet bij een uitnodiging. Controleer of u de hele link uit uw brief hebt overgenomen.",
        "This invitation is not valid",
        "This link does not belong to an invitation. Check that you copied the whole link from your letter.",
    ),
    "revoked": (
        "Deze uitnodiging is ingetrokken",
        "Deze uitnodiging werkt niet meer. Vraag de gemeente om een nieuwe brief als u nog op deze binnenplaats woont.",
        "This invitation has been withdrawn",
        "This invitation no longer works. Ask the municipality for a new letter if you still live at this courtyard.",
    ),
    "expired": (
        "Deze uitnodiging is verlopen",
        "Deze uitnodiging is niet meer geldig. Vraag de gemeente om een nieuwe brief.",
        "This invitation has expired",
        "This invitation is no longer valid. Ask the municipality for a new letter.",
    ),
    "other_site": (
        "Dit is niet uw binnenplaats",
        "Uw uitnodiging opent alleen de pagina van uw eigen binnenplaats.",
        "This is not your courtyard",
        "Your invitation opens only the page of your own courtyard.",
    ),
    "unknown_site": (
        "Onbekende binnenplaats",
        "Deze binnenplaats bestaat niet op deze site.",
        "Unknown courtyard",
        "There is no such courtyard on this site.",
    ),
    "csrf": (
        "Melding niet verwerkt",
        "Het formulier was verlopen of kwam niet van deze pagina. Er is niets opgeslagen. Ga terug naar de pagina en probeer het opnieuw.",
        "Mark not processed",
        "The form had expired or did not come from this page. Nothing was stored. Go back to the page and try again.",
    ),
    "bad_form": (
        "Melding niet verwerkt",
        "Het formulier bevatte een ongeldige waarde. Er is niets opgeslagen.",
        "Mark not processed",
        "The form contained an invalid value. Nothing was stored.",
    ),
    "too_large": (
        "Melding te groot",
        "Het formulier was groter dan toegestaan. Er is niets opgeslagen.",
        "Mark too large",
        "The form was larger than allowed. Nothing was stored.",
    ),
    "storage": (
        "Metingen nu niet bereikbaar",
        "De meetgegevens zijn op dit moment niet bereikbaar. Er is niets opgeslagen; probeer het over een paar minuten opnieuw.",
        "Measurements unavailable",
        "The measurements cannot be reached right now. Nothing was stored; please try again in a few minutes.",
    ),
    "no_mark": (
        "Geen melding om aan te vullen",
        'Er is de laatste 10 minuten geen melding van uw huishouden geteld. Tik eerst op "Ik heb nu last". Er is niets opgeslagen.',
        "No mark to add to",
        'No mark of your household was counted in the last 10 minutes. Tap "It bothers me now" first. Nothing was stored.',
    ),
    "not_found": (
        "Pagina niet gevonden",
        "Deze pagina bestaat niet.",
        "Page not found",
        "This page does not exist.",
    ),
    "method": (
        "Niet toegestaan",
        "Deze pagina kan zo niet worden gebruikt.",
        "Not allowed",
        "This page cannot be used this way.",
    ),
}
