"""The web application (Starlette; pages rendered by Jinja2 on the server, no JavaScript).

Routes (below the path of ``base_url``):

``GET /i/{token}``            opens an invitation: sets the session cookie, welcome page
``GET /s/{site}``             last night and today (needs the session of that site)
``GET /s/{site}/week``        this week
``POST /s/{site}/mark``       "ik heb nu last": CSRF token, optional kind and severity
``POST /s/{site}/mark/detail``   then, optionally, kind and severity of that counted mark
``GET /how``                  how it works (no session needed)
``GET /``                     where to start
``GET /healthz``              ``ok`` (plain text; the benchmark's peer)
``GET /static/style.css``     the only asset

Every response carries the security headers of
:data:`klankkast.courtyard.security.SECURITY_HEADERS`; requests are logged without
addresses (:class:`~klankkast.courtyard.security.SecurityMiddleware`). The session
cookie is HttpOnly and SameSite=Strict; a post needs the session's CSRF token and,
when the browser sends one, our own Origin.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Final, Protocol

import jinja2
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from klankkast.courtyard import chart, model, texts, tokens
from klankkast.courtyard.config import Config
from klankkast.courtyard.errors import StorageError
from klankkast.courtyard.groupcommit import GroupCommit
from klankkast.courtyard.influxstore import MarkPoint, SiteData
from klankkast.courtyard.invitations import Invitation, InvitationRefused, SqliteInvitations
from klankkast.courtyard.security import SECURITY_HEADERS, SecurityMiddleware

__all__ = ["SECURITY_HEADERS", "CourtyardStore", "Services", "create_app"]

log = logging.getLogger("klankkast.courtyard")


SESSION_COOKIE: Final = "kk_session"
LANG_COOKIE: Final = "kk_lang"
#: the mark form is three short fields: anything longer is not from our form
MAX_FORM_BYTES: Final = 2048
MAX_FIELD_CHARS: Final = 128
_FORM_FIELDS: Final = frozenset({"csrf", "kind", "severity", "lang"})
_WEEK_MS: Final = 7 * 86_400_000


class CourtyardStore(Protocol):
    """The InfluxDB port (:class:`~klankkast.courtyard.influxstore.InfluxCourtyard`)."""

    def read_site(self, site: str, since_ms: int, now_ms: int) -> SiteData: ...

    def write_marks(self, marks: Sequence[MarkPoint]) -> None: ...


@dataclass
class _Cached:
    """One InfluxDB read of a site and what is derived from it.

    ``derived`` holds the views (day view and its SVG, week grid, 'now' reading) per
    language and clock minute: they are the same for every resident of the site, so
    500 residents cost one computation per minute and refresh, not 500.
    """

    data: SiteData
    minutes: list[model.Minute]
    background_db: float
    fetched_s: float
    derived: dict[tuple[str, str, int], Any] = field(default_factory=dict)
    #: household hash -> times of its marks (a resident's own marks, without a scan)
    own: dict[str, list[int]] = field(default_factory=dict)

    def add_mark(self, t_ms: int, household: str) -> None:
        self.data.marks.append((t_ms, household))
        self.own.setdefault(household, []).append(t_ms)


@dataclass(kw_only=True)
class Services:
    """What the app needs, built by :mod:`klankkast.courtyard.cli` (or a test)."""

    cfg: Config
    key: bytes
    invitations: SqliteInvitations
    store: CourtyardStore
    limits: model.Limits
    #: per site: the plan's weekly windows ``(weekday_iso, "HH:MM", "HH:MM")``
    patrol_windows: dict[str, list[tuple[int, str, str]]] = field(default_factory=dict)
    now_ms: Callable[[], int] = lambda: int(time.time() * 1000)
    monotonic_s: Callable[[], float] = time.monotonic
    #: when set, called for the current windows instead (``PlanFile``: re-read on change)
    plan: Callable[[], dict[str, list[tuple[int, str, str]]]] | None = None


class _Page(Exception):
    """Stop handling and answer with the error page (status, title key, message key)."""

    def __init__(self, status: int, what: str) -> None:
        super().__init__(what)
        self.status = status
        self.what = what


def _env() -> jinja2.Environment:
    loader = jinja2.FileSystemLoader(str(resources.files("klankkast.courtyard") / "templates"))
    env = jinja2.Environment(loader=loader, autoescape=True, trim_blocks=True, lstrip_blocks=True)
    return env


def create_app(svc: Services) -> ASGIApp:
    """The ASGI application (wrapped in the security middleware)."""
    cfg = svc.cfg
    prefix = cfg.root_path
    env = _env()
    tz = svc.limits.tz
    cache: dict[str, _Cached] = {}
    locks: dict[str, asyncio.Lock] = {}
    mark_lock = asyncio.Lock()
    commit: GroupCommit[MarkPoint] = GroupCommit(svc.store.write_marks)
    #: households whose counted mark is being written: invitation id -> time
    pending: dict[str, int] = {}
    css = (resources.files("klankkast.courtyard") / "static" / "style.css").read_bytes()
    cookie_path = prefix or "/"

    # -- helpers ---------------------------------------------------------------
    def lang_of(request: Request) -> str:
        q = request.query_params.get("lang")
        if q in texts.LANGS:
            return q
        c = request.cookies.get(LANG_COOKIE)
        return c if c in texts.LANGS else "nl"

    def render(request: Request, name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        lang = ctx.pop("lang", None) or lang_of(request)
        other = "en" if lang == "nl" else "nl"
        here = prefix + request.url.path[len(prefix) :] if request.method == "GET" else ""
        body = env.get_template(name).render(
            lang=lang,
            other_lang=other,
            switch_url=(here or prefix + "/how") + "?lang=" + other,
            t=lambda key, **kw: texts.t(key, lang, **kw),
            p=prefix,
            **ctx,
        )
        resp = HTMLResponse(body, status_code=status)
        resp.headers["cache-control"] = "no-store"
        resp.headers["content-language"] = lang
        if request.query_params.get("lang") in texts.LANGS:
            resp.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, path=cookie_path,
                            httponly=True, samesite="strict", secure=cfg.cookie_secure)  # fmt: skip
        return resp

    def error(request: Request, status: int, what: str) -> HTMLResponse:
        lang = lang_of(request)
        nl_title, nl_text, en_title, en_text = texts.ERROR_PAGES[what]
        title, text = (en_title, en_text) if lang == "en" else (nl_title, nl_text)
        return render(request, "error.html", status, title=title, message=text, what=what)

    def session_invitation(request: Request) -> tuple[Invitation, str]:
        value = request.cookies.get(SESSION_COOKIE, "")
        now = svc.now_ms()
        inv_id = tokens.verify_session(svc.key, value, now // 1000, cfg.session_days * 86400)
        if inv_id is None:
            raise _Page(403, "no_session")
        inv = svc.invitations.get(inv_id)
        if inv is None:
            raise _Page(403, "unknown")
        try:
            inv.check(now)
        except InvitationRefused as err:
            raise _Page(403, err.reason) from None
        return inv, value

    def site_for(request: Request) -> tuple[str, Invitation, str]:
        site = request.path_params["site"]
        if site not in cfg.sites:
            raise _Page(404, "unknown_site")
        inv, session = session_invitation(request)
        if inv.site != site:
            raise _Page(403, "other_site")
        return site, inv, session

    async def site_data(site: str) -> _Cached:
        entry = cache.get(site)
        if entry is not None and svc.monotonic_s() - entry.fetched_s < cfg.cache_s:
            return entry
        lock = locks.setdefault(site, asyncio.Lock())
        async with lock:
            entry = cache.get(site)
            if entry is not None and svc.monotonic_s() - entry.fetched_s < cfg.cache_s:
                return entry
            now = svc.now_ms()
            try:
                data = await run_in_threadpool(svc.store.read_site, site, now - _WEEK_MS, now)
            except StorageError as err:
                log.warning("reading InfluxDB for %s failed: %s", site, err)
                raise _Page(503, "storage") from None
            minutes = model.combine_nodes(data.node_minutes)
            bg = model.usual_background_db(
                [m.laeq_db for m in minutes], svc.limits.background_quantile
            )
            entry = _Cached(data, minutes, bg, svc.monotonic_s())
            for t, h in data.marks:
                entry.own.setdefault(h, []).append(t)
            cache[site] = entry
            return entry

    def guard(
        handler: Callable[[Request], Awaitable[Response]],
    ) -> Callable[[Request], Awaitable[Response]]:
        async def wrapped(request: Request) -> Response:
            try:
                return await handler(request)
            except _Page as page:
                return error(request, page.status, page.what)

        return wrapped

    # -- pages -----------------------------------------------------------------
    async def home(request: Request) -> Response:
        try:
            inv, _ = session_invitation(request)
        except _Page:
            return render(request, "landing.html", sites=cfg.sites)
        return Response(status_code=303, headers={"location": f"{prefix}/s/{inv.site}"})

    async def invitation(request: Request) -> Response:
        token = request.path_params["token"]
        now = svc.now_ms()
        try:
            inv = svc.invitations.by_token(token)
            inv.check(now)
        except InvitationRefused as err:
            code = 404 if err.reason == "unknown" else 403
            return error(request, code, err.reason)
        resp = render(
            request, "welcome.html", site=inv.site, site_name=cfg.sites.get(inv.site, inv.site)
        )
        resp.set_cookie(
            SESSION_COOKIE, tokens.session_value(svc.key, inv.id, now // 1000),
            max_age=cfg.session_days * 86400, path=cookie_path, httponly=True,
            samesite="strict", secure=cfg.cookie_secure,
        )  # fmt: skip
        return resp

    def plan_spans(site: str, start_ms: int, end_ms: int) -> list[model.Span]:
        windows = svc.plan() if svc.plan is not None else svc.patrol_windows
        return model.patrol_spans(windows.get(site, []), start_ms, end_ms, tz)

    def derive(entry: _Cached, what: str, lang: str, now: int, make: Callable[[], Any]) -> Any:
        key = (what, lang, now // 60_000)
        value = entry.derived.get(key)
        if value is None:
            if len(entry.derived) > 64:
                entry.derived.clear()
            value = entry.derived[key] = make()
        return value

    def reading_lines(entry: _Cached, site: str, lang: str, now: int) -> list[str]:
        def make() -> list[str]:
            r = model.now_reading(
                entry.minutes, now, svc.limits, entry.background_db, entry.data.alerts
            )
            return texts.describe_now(r, lang, tz)

        lines: list[str] = derive(entry, "now", lang, now, make)
        return lines

    async def today(request: Request) -> Response:
        site, inv, session = site_for(request)
        entry = await site_data(site)
        now = svc.now_ms()
        lang = lang_of(request)

        def make() -> tuple[model.DayView, str]:
            d = entry.data
            view = model.day_view(
                now, svc.limits, entry.minutes, entry.background_db,
                episodes=d.episodes, marks=d.marks, alerts=d.alerts,
                patrols=plan_spans(site, now - 86_400_000, now), visits_ms=d.visits_ms,
            )  # fmt: skip
            labels = {
                k: texts.t(v, lang)
                for k, v in (("title", "chart_title"), ("marks", "row_marks"),
                             ("alerts", "row_alerts"), ("patrols", "row_patrols"),
                             ("visits", "row_visits"))
            }  # fmt: skip
            return view, chart.day_svg(view, tz, labels)

        view, svg = derive(entry, "today", lang, now, make)
        household = tokens.household_hash(svc.key, inv.id)
        own = sorted(t for t in entry.own.get(household, ()) if view.start_ms <= t <= now)
        return render(
            request, "today.html", site=site, site_name=cfg.sites[site], view=view,
            svg=svg, csrf=tokens.csrf_token(svc.key, session),
            kinds=texts.KINDS, clock=lambda t_ms: texts.clock(t_ms, tz),
            now_lines=reading_lines(entry, site, lang, now), fmt_db=_fmt_db,
            limits=svc.limits, active="today", lang=lang, own_marks=own,
        )  # fmt: skip

    async def week(request: Request) -> Response:
        site, _inv, _session = site_for(request)
        entry = await site_data(site)
        now = svc.now_ms()

        def make() -> model.WeekGrid:
            d = entry.data
            return model.week_grid(
                now, svc.limits, entry.minutes, (t for t, _ in d.marks), d.complaints_ms
            )

        grid = derive(entry, "week", "", now, make)
        return render(
            request, "week.html", site=site, site_name=cfg.sites[site], grid=grid,
            totals=[sum(r) for r in grid.nuisance_min], marks_total=[sum(r) for r in grid.marks],
            complaints_total=[sum(r) for r in grid.complaints], active="week",
            day_label=texts.day_label,
        )  # fmt: skip

    async def how(request: Request) -> Response:
        return render(request, "how.html", active="how", limits=svc.limits, sites=cfg.sites)

    async def read_form(request: Request) -> dict[str, str]:
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/x-www-form-urlencoded":
            raise _Page(400, "bad_form")
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > MAX_FORM_BYTES):
            raise _Page(413, "too_large")
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_FORM_BYTES:
                raise _Page(413, "too_large")
        try:
            pairs = urllib.parse.parse_qsl(
                body.decode("ascii"), keep_blank_values=True, strict_parsing=bool(body),
                max_num_fields=len(_FORM_FIELDS),
            )  # fmt: skip
        except (UnicodeDecodeError, ValueError):
            raise _Page(400, "bad_form") from None
        form: dict[str, str] = {}
        for k, v in pairs:
            if k not in _FORM_FIELDS or k in form or len(v) > MAX_FIELD_CHARS:
                raise _Page(400, "bad_form")
            form[k] = v
        return form

    public = urllib.parse.urlsplit(cfg.base_url)
    public_origin = f"{public.scheme}://{public.netloc}"

    async def checked_form(
        request: Request, session: str
    ) -> tuple[dict[str, str], str | None, int | None]:
        # defence in depth next to the CSRF token: a browser's Origin must be ours
        origin = request.headers.get("origin")
        if origin is not None and origin not in (
            public_origin,
            f"{request.url.scheme}://{request.url.netloc}",
        ):
            raise _Page(403, "csrf")
        form = await read_form(request)
        if not tokens.verify_csrf(svc.key, session, form.get("csrf", "")):
            raise _Page(403, "csrf")
        kind = form.get("kind", "")
        if kind and kind not in texts.KINDS:
            raise _Page(400, "bad_form")
        sev_text = form.get("severity", "")
        if sev_text and sev_text not in ("1", "2", "3", "4", "5"):
            raise _Page(400, "bad_form")
        return form, kind or None, int(sev_text) if sev_text else None

    def confirm(
        request: Request, form: dict[str, str], entry: _Cached, site: str, session: str,
        now: int, **ctx: Any,
    ) -> HTMLResponse:  # fmt: skip
        lang = form["lang"] if form.get("lang") in texts.LANGS else lang_of(request)
        return render(
            request, "confirm.html", site=site, site_name=cfg.sites[site], lang=lang,
            now_lines=reading_lines(entry, site, lang, now), active="today",
            csrf=tokens.csrf_token(svc.key, session), kinds=texts.KINDS, **ctx,
        )  # fmt: skip

    async def mark(request: Request) -> Response:
        """One tap: a mark (with kind and severity when the resident gave them)."""
        site, inv, session = site_for(request)
        form, kind, severity = await checked_form(request, session)
        entry = await site_data(site)  # 503 before anything is written when InfluxDB is down
        household = tokens.household_hash(svc.key, inv.id)
        async with mark_lock:  # check and reserve the household's 10 minutes, no I/O wait
            now = svc.now_ms()
            last = pending.get(inv.id) or svc.invitations.last_mark_ms(inv.id)
            counted = inv.id not in pending and (
                last is None or now - last >= model.MARK_INTERVAL_S * 1000
            )
            if counted:
                pending[inv.id] = now
        if counted:
            try:
                await commit.submit(MarkPoint(site, now, household, kind, severity))
                svc.invitations.set_last_mark(inv.id, now)
                entry.add_mark(now, household)
            except StorageError as err:
                log.warning("writing a mark of %s failed: %s", site, err)
                raise _Page(503, "storage") from None
            finally:
                pending.pop(inv.id, None)
        return confirm(
            request, form, entry, site, session, now, counted=counted,
            already_at=None if counted or last is None else texts.clock(last, tz),
            detail=(kind, severity), can_add=counted and not (kind and severity),
        )  # fmt: skip

    async def detail(request: Request) -> Response:
        """Then, optionally: kind and severity added to the household's counted mark.

        The point is rewritten with the same series and time, so InfluxDB adds the
        fields to the mark already written; nothing new is counted.
        """
        site, inv, session = site_for(request)
        form, kind, severity = await checked_form(request, session)
        if kind is None and severity is None:
            raise _Page(400, "bad_form")
        entry = await site_data(site)
        household = tokens.household_hash(svc.key, inv.id)
        now = svc.now_ms()
        last = svc.invitations.last_mark_ms(inv.id)
        if last is None or now - last >= model.MARK_INTERVAL_S * 1000:
            raise _Page(409, "no_mark")
        try:
            await commit.submit(MarkPoint(site, last, household, kind, severity))
        except StorageError as err:
            log.warning("adding to a mark of %s failed: %s", site, err)
            raise _Page(503, "storage") from None
        return confirm(
            request, form, entry, site, session, now, counted=True, added=True,
            already_at=None, detail=(kind, severity), can_add=False,
        )  # fmt: skip

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok")

    async def style(request: Request) -> Response:
        return Response(css, media_type="text/css", headers={"cache-control": "max-age=3600"})

    async def not_found(request: Request, exc: Exception) -> Response:
        return error(request, 404, "not_found")

    async def not_allowed(request: Request, exc: Exception) -> Response:
        return error(request, 405, "method")

    routes = [
        Route(prefix + "/", guard(home)),
        Route(prefix + "/how", guard(how)),
        Route(prefix + "/healthz", healthz),
        Route(prefix + "/static/style.css", style),
        Route(prefix + "/i/{token}", guard(invitation)),
        Route(prefix + "/s/{site}", guard(today)),
        Route(prefix + "/s/{site}/week", guard(week)),
        Route(prefix + "/s/{site}/mark", guard(mark), methods=["POST"]),
        Route(prefix + "/s/{site}/mark/detail", guard(detail), methods=["POST"]),
    ]
    app = Starlette(routes=routes, exception_handlers={404: not_found, 405: not_allowed})
    return SecurityMiddleware(app, hsts=cfg.cookie_secure)


def _fmt_db(x: float) -> str:
    return f"{x:.0f}" if math.isfinite(x) else "-"
