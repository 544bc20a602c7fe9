"""Storage: InfluxDB over its HTTP API -- line protocol, a small standard-library client,
the error classes of writes and queries, and the layout (every retention-policy and
measurement name). The ingest, the analysis and the alerts use it; the sensor does not.

Only the parts of the API that InfluxDB 1.x, 2.x (v1 compatibility endpoints) and
3.x share are used: line protocol ``POST /write?db=&rp=&precision=``, InfluxQL
``POST /query`` and ``GET /ping``. Authentication is either HTTP basic auth
(username + password) or an ``Authorization: Token <token>`` header.

Layout (see ``deploy/influxdb/README.md`` and ``deploy/influxdb/setup.sh``): the
retention policies are :data:`RETENTION_POLICIES` and the policy of each measurement
is :data:`MEASUREMENTS` -- the one place that says how long what is kept.
``docs/privacy.md`` carries :func:`retention_table` verbatim (a test compares them,
and compares both with ``SHOW RETENTION POLICIES`` after ``setup.sh``). :data:`RP_RAW`
(30 days) is the DEFAULT policy: 1-s frames and the operational measurements.
:data:`RP_FOREVER` (no expiry unless the municipality sets a term) holds the minute
summaries and the enforcement record (complaints, visits, episodes, alerts, the
analysis' headline numbers); writers pass ``rp=rp_of(measurement)`` and query
``"<rp>"."<measurement>"``. :data:`RP_EXPERIENCE` (365 days) holds residents' marks.
"""

from __future__ import annotations

import base64
import email.utils
import http.client
import json
import math
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

__all__ = [
    "ADDRESS_FORM",
    "MEASUREMENTS",
    "M_ALERT",
    "M_ANALYSIS",
    "M_COMPLAINT",
    "M_EPISODE",
    "M_EXPERIENCE",
    "M_INGEST_STATS",
    "M_LIMIT",
    "M_MINUTE",
    "M_NODE_HEALTH",
    "M_SECOND",
    "M_STATUS",
    "M_VISIT",
    "RETENTION_POLICIES",
    "RP_EXPERIENCE",
    "RP_FOREVER",
    "RP_RAW",
    "AddressError",
    "InfluxAddress",
    "InfluxError",
    "InfluxHTTP",
    "InfluxTarget",
    "PayloadTooLargeError",
    "PermanentWriteError",
    "QueryError",
    "RetentionPolicy",
    "RetryableWriteError",
    "WriteError",
    "check_url_value",
    "escape_field_key",
    "escape_measurement",
    "escape_tag",
    "format_field_value",
    "line",
    "parse_address",
    "parse_duration_ms",
    "quote_ident",
    "redact_address",
    "retention_table",
    "rp_of",
    "split_address_keys",
]


class InfluxError(Exception):
    """Base class of every InfluxDB error raised here."""


class WriteError(InfluxError):
    """A write to InfluxDB did not succeed."""


class RetryableWriteError(WriteError):
    """429, 5xx or a connection problem: keep the batch, back off and retry.

    ``retry_after_s`` is the server's ``Retry-After`` in seconds, or ``None``.
    """

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class PermanentWriteError(WriteError):
    """Another 4xx: the batch (or a line in it) will never be accepted; drop and count."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"InfluxDB refused the write with HTTP {status}: {body.strip()[:500]}")
        self.status = status
        self.body = body


class PayloadTooLargeError(PermanentWriteError):
    """HTTP 413: the request body is larger than the server accepts; split the batch."""


class QueryError(InfluxError):
    """An InfluxQL query failed (HTTP error or an ``error`` in the result)."""


class AddressError(InfluxError, ValueError):
    """Text that is not an InfluxDB address; the message is one line saying why.

    ``reason`` is the problem and the form without the text (for a caller's own
    ``ConfigError(key, value, reason)``); ``shown`` is the text with any password
    replaced by ``***``.
    """

    def __init__(self, shown: str, reason: str) -> None:
        super().__init__(f"{shown!r} is not an InfluxDB address: {reason}")
        self.shown = shown
        self.reason = reason


#: The one way every program is told where InfluxDB is (config files and flags).
ADDRESS_FORM: Final = "influxdb+http(s)://[user@]host:port/database"

_IDENT_RE: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")


@dataclass(frozen=True, slots=True)
class InfluxAddress:
    """Where a database lives: ``influxdb+http(s)://[user@]host:port/database``.

    The password is never part of the address: it comes from a file
    (``password_file`` in a config, ``--influx-password-file`` on the command line),
    so neither a process list nor a shell history nor a log line shows it.
    ``options`` holds the query parameters a caller allowed (e.g. ``measurement``
    of ``klankkast-analyze --levels``).
    """

    scheme: str
    host: str
    port: int
    database: str
    username: str | None = None
    options: tuple[tuple[str, str], ...] = ()

    @property
    def url(self) -> str:
        """The server's base URL for :class:`InfluxHTTP`: ``http(s)://host:port``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    def option(self, key: str, default: str | None = None) -> str | None:
        return dict(self.options).get(key, default)

    def __str__(self) -> str:
        user = f"{urllib.parse.quote(self.username, safe='')}@" if self.username else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        query = f"?{urllib.parse.urlencode(self.options)}" if self.options else ""
        return f"influxdb+{self.scheme}://{user}{host}:{self.port}/{self.database}{query}"

    def client(self, password: str | None = None, *, timeout_s: float = 10.0) -> InfluxHTTP:
        """An (unconnected) :class:`InfluxHTTP` for this address."""
        return InfluxHTTP(
            self.url,
            self.database,
            username=self.username,
            password=password if self.username is not None else None,
            timeout_s=timeout_s,
        )


@dataclass(frozen=True, slots=True)
class InfluxTarget:
    """The part of a program's ``[influxdb]`` table every program has: the server, the
    database and the user with the file holding its password (never the password)."""

    url: str = "http://127.0.0.1:8086"
    database: str = "klankkast"
    username: str | None = None
    password_file: Path | None = None


def redact_address(text: str) -> str:
    """``text`` with the password of a ``scheme://user:password@host`` replaced by ``***``."""
    return re.sub(r"^([A-Za-z][A-Za-z0-9+.-]*://[^/@:]*:)[^/@]*@", r"\1***@", text)


def parse_address(text: str, *, options: Sequence[str] = ()) -> InfluxAddress:
    """Parse ``influxdb+http(s)://[user@]host:port/database[?option=value]``.

    Only query parameters named in ``options`` are accepted. Anything else -- a plain
    ``http://host:8086/db``, a password in the address, a missing port or database,
    a path below the database -- raises :class:`AddressError` with one line that
    names the problem and the form.
    """

    def bad(why: str) -> AddressError:
        return AddressError(redact_address(text), f"{why}; use {ADDRESS_FORM}")

    if not isinstance(text, str) or not text:
        raise AddressError(str(text or ""), f"it is empty; use {ADDRESS_FORM}")
    if any(c.isspace() for c in text):
        raise bad("it contains white space")
    try:
        parts = urllib.parse.urlsplit(text)
    except ValueError:  # an unclosed "[" of an IPv6 host
        raise bad("the host is not a name, an IPv4 or a [bracketed] IPv6 address") from None
    if parts.scheme in ("http", "https"):
        raise bad(f"write influxdb+{parts.scheme}:// instead of {parts.scheme}://")
    if parts.scheme not in ("influxdb+http", "influxdb+https"):
        raise bad(f"the scheme must be influxdb+http or influxdb+https, not {parts.scheme!r}")
    if parts.password is not None:
        raise bad("the password must not be in the address (give it in a password file)")
    if not parts.hostname:
        raise bad("the host is missing")
    try:
        port = parts.port
    except ValueError:
        raise bad("the port is not a number from 1 to 65535") from None
    if port is None or port == 0:
        raise bad("the port is missing")
    database = parts.path[1:] if parts.path.startswith("/") else ""
    if not database:
        raise bad("the database is missing (.../database)")
    if "/" in database or not _IDENT_RE.fullmatch(urllib.parse.unquote(database)):
        raise bad("the database must be one name of 1-64 of [A-Za-z0-9_.-]")
    if parts.fragment:
        raise bad("it must not have a #fragment")
    username = urllib.parse.unquote(parts.username) if parts.username is not None else None
    if username == "":
        raise bad("the user name before '@' is empty")
    try:
        pairs = urllib.parse.parse_qsl(parts.query, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        pairs = [] if not parts.query else [(parts.query, "")]
    for key, _value in pairs:
        if key not in options:
            allowed = ", ".join(options) if options else "none"
            raise bad(f"unknown option {key!r} (allowed: {allowed})")
    return InfluxAddress(
        scheme=parts.scheme.split("+", 1)[1],
        host=parts.hostname,
        port=port,
        database=urllib.parse.unquote(database),
        username=username,
        options=tuple(pairs),
    )


def check_url_value(value: str) -> str | None:
    """What a config's ``url`` key allows, or ``None`` when ``value`` is allowed:
    ``influxdb+http(s)://[user@]host:port/db``, or the older ``http(s)://host[:port]``
    (with ``database`` and ``username`` as keys of their own)."""
    if value.startswith("influxdb+"):
        try:
            parse_address(value)
        except AddressError as err:
            return err.reason
        return None
    try:
        parts = urllib.parse.urlsplit(value)
    except ValueError:
        return f"must be {ADDRESS_FORM}"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"must be {ADDRESS_FORM}"
    try:
        _ = parts.port
    except ValueError:
        return "has an invalid port"
    if parts.path not in ("", "/") or parts.query or parts.username or parts.password:
        return f"must be {ADDRESS_FORM} (a plain http(s):// URL names only host and port)"
    return None


def split_address_keys(
    values: dict[str, Any],
    raw: Mapping[str, Any],
    add: Callable[[str, object, str], None],
    table: str = "influxdb",
) -> None:
    """Fill ``database`` and ``username`` of a checked config table from its ``url``
    when that is the one address form (they may then not be given again: each is
    reported through ``add(key, value, allowed)``); the older ``http(s)://host:port``
    keeps them as keys of their own. ``values["url"]`` becomes the server's base URL.
    """
    url = values.get("url")
    if not isinstance(url, str) or not url.startswith("influxdb+"):
        return
    try:
        address = parse_address(url)
    except AddressError:
        return  # reported by the url check
    for key in ("database", "username"):
        if raw.get(key) is not None:
            add(f"{table}.{key}", raw[key], f"give it in {table}.url only ({url})")
    values.update(url=address.url, database=address.database, username=address.username)


RP_RAW: Final = "raw"
RP_FOREVER: Final = "forever"
RP_EXPERIENCE: Final = "experience"

M_SECOND: Final = "second"
M_MINUTE: Final = "minute"
M_STATUS: Final = "status"
M_NODE_HEALTH: Final = "node_health"
M_INGEST_STATS: Final = "ingest_stats"
M_COMPLAINT: Final = "complaint"
M_VISIT: Final = "visit"
M_EPISODE: Final = "episode"
M_ALERT: Final = "alert"
M_ANALYSIS: Final = "analysis"
M_EXPERIENCE: Final = "experience"
M_LIMIT: Final = "limit"


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """One retention policy of the layout.

    ``duration`` is InfluxQL (``30d``, ``365d``, ``INF``); ``days`` the same in days
    (``None``: no expiry); ``setting`` how an operator changes it.
    """

    name: str
    duration: str
    days: int | None
    default: bool
    setting: str


#: Every retention policy, as ``deploy/influxdb/setup.sh`` and :meth:`InfluxHTTP.ensure_layout`
#: create them (setup.sh's defaults; both keep an existing policy's changed duration).
RETENTION_POLICIES: Final[dict[str, RetentionPolicy]] = {
    RP_RAW: RetentionPolicy(
        RP_RAW, "30d", 30, True, "`INFLUX_RAW_DURATION` (setup.sh), `[influxdb] raw_retention_days`"
    ),
    RP_FOREVER: RetentionPolicy(
        RP_FOREVER, "INF", None, False, "`INFLUX_FOREVER_DURATION` (setup.sh), e.g. `104w`"
    ),
    RP_EXPERIENCE: RetentionPolicy(
        RP_EXPERIENCE, "365d", 365, False, "`INFLUX_EXPERIENCE_DURATION` (setup.sh)"
    ),
}

#: measurement -> (retention policy, what it holds, why it is kept that long)
MEASUREMENTS: Final[dict[str, tuple[str, str, str]]] = {
    M_SECOND: (RP_RAW, "1-s level frames of every node", "detail for recent complaints only"),
    M_STATUS: (RP_RAW, "node status (online, version, calibration, clock)", "operations"),
    M_NODE_HEALTH: (RP_RAW, "node health computed by the ingest (Fleet health)", "operations"),
    M_INGEST_STATS: (RP_RAW, "ingest counters", "operations"),
    M_MINUTE: (RP_FOREVER, "per-minute level summaries", "trends, patrol plan history"),
    M_COMPLAINT: (RP_FOREVER, "imported complaints (no personal data, section 5)", "enforcement record"),
    M_VISIT: (RP_FOREVER, "enforcement visits", "enforcement record"),
    M_EPISODE: (RP_FOREVER, "nuisance episodes of the analysis", "enforcement record"),
    M_ALERT: (RP_FOREVER, "live alerts: site, time, levels", "enforcement record"),
    M_ANALYSIS: (RP_FOREVER, "headline numbers of an analysis report", "enforcement record"),
    M_LIMIT: (RP_FOREVER, "the rules' period limit per site and quarter hour", "dashboards' limit lines"),
    M_EXPERIENCE: (RP_EXPERIENCE, "residents' marks (household hash, section 4a)", "as told to residents"),
}  # fmt: skip


def rp_of(measurement: str) -> str:
    """The retention policy that holds ``measurement`` (:data:`MEASUREMENTS`)."""
    try:
        return MEASUREMENTS[measurement][0]
    except KeyError:
        raise ValueError(
            f"measurement must be one of {', '.join(MEASUREMENTS)}; got {measurement!r}"
        ) from None


def _term(rp: RetentionPolicy) -> str:
    return "no expiry" if rp.days is None else f"{rp.days} days"


def retention_table() -> str:
    """The retention table of ``docs/privacy.md`` (Markdown), made from the layout."""
    rows = [
        "| measurement | what | retention policy | kept (as shipped) | why |",
        "|---|---|---|---|---|",
    ]
    for name, (rp, what, why) in MEASUREMENTS.items():
        pol = RETENTION_POLICIES[rp]
        rows.append(f"| `{name}` | {what} | `{rp}` | **{_term(pol)}** | {why} |")
    rows += [
        "",
        "| retention policy | kept (as shipped) | DEFAULT | how to change |",
        "|---|---|---|---|",
    ]
    for pol in RETENTION_POLICIES.values():
        default = "yes" if pol.default else "no"
        rows.append(f"| `{pol.name}` | **{_term(pol)}** | {default} | {pol.setting} |")
    return "\n".join(rows) + "\n"


_TAG_TABLE: Final = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ "})
_MEAS_TABLE: Final = str.maketrans({",": r"\,", " ": r"\ "})
_STR_TABLE: Final = str.maketrans({"\\": "\\\\", '"': '\\"'})
_PRECISIONS: Final = ("ns", "u", "ms", "s")


def _check_key_text(kind: str, value: str) -> None:
    if not value:
        raise ValueError(f"{kind} must not be empty")
    if "\n" in value or "\r" in value:
        raise ValueError(f"{kind} must not contain a newline; got {value!r}")
    if value.endswith("\\"):
        raise ValueError(f"{kind} must not end with a backslash (line protocol cannot express it)")


def escape_tag(v: str) -> str:
    """Escape a tag key, tag value or field key for line protocol.

    Commas, equals signs and spaces are backslash-escaped (InfluxDB line protocol
    reference, "Special characters"). Empty values, newlines and a trailing
    backslash cannot be expressed and raise :class:`ValueError`.
    """
    _check_key_text("tag key/value", v)
    return v.translate(_TAG_TABLE)


escape_field_key = escape_tag


def escape_measurement(v: str) -> str:
    """Escape a measurement name: commas and spaces.

    A name starting with ``#`` would turn the line into a comment and is refused.
    """
    _check_key_text("measurement", v)
    if v.startswith("#"):
        raise ValueError(
            f"measurement must not start with '#' (a line-protocol comment); got {v!r}"
        )
    if v[:1].isspace():
        # InfluxDB skips whitespace at the start of a line; there is no escape for it
        raise ValueError(f"measurement must not start with whitespace; got {v!r}")
    return v.translate(_MEAS_TABLE)


def format_field_value(value: float | int | str | bool) -> str:
    """One field value in line protocol.

    ``bool`` -> ``true``/``false``; ``int`` -> ``<n>i`` (an integer field);
    ``float`` -> shortest round-trip decimal, always a float field (``60.0``, never
    ``60``, so a level never creates an integer field); ``str`` -> double-quoted with
    backslashes and quotes escaped. Non-finite floats raise :class:`ValueError`.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}i"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"field value must be finite; got {value!r}")
        return repr(value)
    if isinstance(value, str):
        return '"' + value.translate(_STR_TABLE) + '"'
    raise TypeError(f"field value must be float, int, str or bool; got {type(value).__name__}")


def line(
    measurement: str,
    tags: Mapping[str, str],
    fields: Mapping[str, float | int | str | bool],
    t_ms: int,
) -> str:
    """Encode one point as a line of InfluxDB line protocol (millisecond timestamp).

    Tags are sorted by key (InfluxDB's recommendation for write performance); a tag
    with an empty value is left out (line protocol has no empty tag values). At least
    one field is required. The caller writes with ``precision="ms"``.
    """
    if not fields:
        raise ValueError(f"a point needs at least one field; {measurement!r} has none")
    parts = [escape_measurement(measurement)]
    for key in sorted(tags):
        value = tags[key]
        if value == "":
            continue
        parts.append(f"{escape_tag(key)}={escape_tag(value)}")
    head = ",".join(parts)
    body = ",".join(f"{escape_tag(k)}={format_field_value(v)}" for k, v in fields.items())
    return f"{head} {body} {int(t_ms)}"


def quote_ident(name: str) -> str:
    """Quote an InfluxQL identifier: ``"name"`` with ``"`` and ``\\`` escaped."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


_DURATION_UNITS: Final = {
    "h": 3_600_000,
    "m": 60_000,
    "s": 1000,
    "ms": 1,
    "d": 86_400_000,
    "w": 604_800_000,
}


def parse_duration_ms(text: str) -> int | None:
    """A retention duration as InfluxDB reports it (``720h0m0s``) in ms; ``0s``/empty -> None."""
    total = 0.0
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|[hmsdw])", text)
    if not parts:
        return None
    for number, unit in parts:
        total += float(number) * _DURATION_UNITS[unit]
    return int(total) or None


def _retry_after(value: str | None) -> float | None:
    """Parse an HTTP ``Retry-After`` header (seconds or an HTTP date), RFC 9110 §10.2.3."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class InfluxHTTP:
    """A thin, thread-safe client of InfluxDB's HTTP API (standard library only).

    Nothing connects in ``__init__``; the first request opens one keep-alive
    connection that later requests reuse (one request at a time per instance).

    Parameters
    ----------
    url:
        ``http://host:port`` or ``https://host:port`` (a path prefix is kept).
    database:
        Default database for writes and queries.
    username, password:
        HTTP basic auth (InfluxDB 1.x users; 2.x/3.x accept a token as password).
    token:
        Sent as ``Authorization: Token <token>`` (InfluxDB 2.x/3.x, or 1.x ``user:pass``).
    timeout_s:
        Socket timeout of each request.
    """

    def __init__(
        self,
        url: str,
        database: str,
        *,
        username: str | None = None,
        password: str | None = None,
        token: str | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"InfluxDB url must be http(s)://host[:port]; got {url!r}")
        self.url = url
        self.database = database
        self.timeout_s = timeout_s
        self._scheme = parsed.scheme
        self._host = parsed.hostname
        self._port = parsed.port or (443 if parsed.scheme == "https" else 80)
        self._prefix = parsed.path.rstrip("/")
        self._headers: dict[str, str] = {}
        if token:
            self._headers["Authorization"] = f"Token {token}"
        elif username is not None:
            raw = f"{username}:{password or ''}".encode()
            self._headers["Authorization"] = "Basic " + base64.b64encode(raw).decode("ascii")
        self._lock = threading.Lock()
        self._conn: http.client.HTTPConnection | None = None

    # -- transport ---------------------------------------------------------------
    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            cls = (
                http.client.HTTPSConnection
                if self._scheme == "https"
                else http.client.HTTPConnection
            )
            self._conn = cls(self._host, self._port, timeout=self.timeout_s)
        return self._conn

    def close(self) -> None:
        """Close the keep-alive connection (a later request reopens it)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _request(
        self,
        method: str,
        path: str,
        params: Mapping[str, str],
        body: bytes | None = None,
        content_type: str | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        target = self._prefix + path
        if params:
            target += "?" + urllib.parse.urlencode(params)
        headers = dict(self._headers)
        if content_type:
            headers["Content-Type"] = content_type
        with self._lock:
            for attempt in (0, 1):
                conn = self._connection()
                try:
                    conn.request(method, target, body=body, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                    resp_headers = {k.lower(): v for k, v in resp.getheaders()}
                    if resp_headers.get("connection", "").lower() == "close":
                        conn.close()
                        self._conn = None
                    return resp.status, resp_headers, data
                except (OSError, http.client.HTTPException):
                    conn.close()
                    self._conn = None
                    # A stale keep-alive connection fails on first use: retry once at once.
                    if attempt == 1:
                        raise
        raise AssertionError("unreachable")  # pragma: no cover

    # -- API ---------------------------------------------------------------------
    def write(
        self,
        lines: Sequence[str],
        *,
        rp: str | None = None,
        precision: str = "ms",
        db: str | None = None,
    ) -> None:
        """Write lines of line protocol; return only when InfluxDB answered 204.

        Raises
        ------
        RetryableWriteError
            429, any 5xx or a connection problem (``retry_after_s`` from the header).
        PayloadTooLargeError
            413: split the batch and write the halves.
        PermanentWriteError
            Any other 4xx (e.g. a malformed line or a field type conflict).
        """
        if precision not in _PRECISIONS:
            raise ValueError(
                f"precision must be one of {', '.join(_PRECISIONS)}; got {precision!r}"
            )
        if not lines:
            return
        params = {"db": db or self.database, "precision": precision}
        if rp:
            params["rp"] = rp
        body = ("\n".join(lines) + "\n").encode("utf-8")
        try:
            status, headers, data = self._request(
                "POST", "/write", params, body, "text/plain; charset=utf-8"
            )
        except (OSError, http.client.HTTPException) as err:
            raise RetryableWriteError(f"InfluxDB at {self.url} unreachable: {err}") from err
        if status in (200, 204):
            return
        text = data.decode("utf-8", "replace")
        if status == 413:
            raise PayloadTooLargeError(status, text)
        if status == 429 or status >= 500:
            raise RetryableWriteError(
                f"InfluxDB answered HTTP {status}: {text.strip()[:300]}",
                _retry_after(headers.get("retry-after")),
            )
        raise PermanentWriteError(status, text)

    def query_raw(self, q: str, *, db: str | None = None, epoch: str = "ms") -> dict[str, Any]:
        """Run InfluxQL and return the decoded JSON of ``/query``; raise :class:`QueryError`."""
        params = {"q": q, "epoch": epoch}
        database = self.database if db is None else db
        if database:
            params["db"] = database
        body = urllib.parse.urlencode(params).encode()
        try:
            status, _headers, data = self._request(
                "POST", "/query", {}, body, "application/x-www-form-urlencoded"
            )
        except (OSError, http.client.HTTPException) as err:
            raise QueryError(f"InfluxDB at {self.url} unreachable: {err}") from err
        text = data.decode("utf-8", "replace")
        try:
            doc = json.loads(text) if text else {}
        except json.JSONDecodeError:
            doc = {"error": text.strip()[:300]}
        if status != 200 or "error" in doc:
            raise QueryError(
                f"InfluxDB query failed (HTTP {status}): {doc.get('error', text[:300])}"
            )
        for result in doc.get("results", []):
            if "error" in result:
                raise QueryError(f"InfluxDB query failed: {result['error']} (query: {q[:200]})")
        return dict(doc)

    def query(self, q: str, *, db: str | None = None, epoch: str = "ms") -> list[dict[str, Any]]:
        """Run InfluxQL; return flattened rows ``{"name", "time", <tags>, <columns>}``.

        Rows of all statements and series are concatenated in order; ``time`` is an
        integer epoch in ``epoch`` units (milliseconds by default).
        """
        doc = self.query_raw(q, db=db, epoch=epoch)
        rows: list[dict[str, Any]] = []
        for result in doc.get("results", []):
            for series in result.get("series", []) or []:
                name = series.get("name")
                tags = series.get("tags") or {}
                columns = series.get("columns", [])
                for values in series.get("values", []) or []:
                    row: dict[str, Any] = {"name": name, **tags}
                    row.update(zip(columns, values, strict=False))
                    rows.append(row)
        return rows

    def ping(self) -> bool:
        """``True`` when the server answers ``/ping`` with 204 (auth not checked)."""
        try:
            status, _h, _d = self._request("GET", "/ping", {})
        except (OSError, http.client.HTTPException):
            return False
        return status in (200, 204)

    def _retention_policies(self) -> dict[str, dict[str, Any]]:
        q = f"SHOW RETENTION POLICIES ON {quote_ident(self.database)}"
        return {row["name"]: row for row in self.query(q, db="") if "name" in row}

    def retention_ms(self, rp: str) -> int | None:
        """Duration of retention policy ``rp`` in ms; ``None`` if infinite or unknown."""
        try:
            row = self._retention_policies().get(rp)
        except QueryError:
            return None
        return parse_duration_ms(str(row.get("duration", ""))) if row else None

    def ensure_layout(self, raw_days: int = 30) -> None:
        """Create the database and the retention policies of :data:`RETENTION_POLICIES`
        that are absent.

        ``raw`` keeps ``raw_days`` days and is created as the DEFAULT policy (as
        ``deploy/influxdb/setup.sh`` does); the others get their layout duration.
        Existing policies are left as they are, and nothing but ``SHOW RETENTION
        POLICIES`` is sent when the layout is complete, so a user without admin rights
        (as ``deploy/influxdb/setup.sh`` creates) can run it.
        """
        if raw_days < 1:
            raise ValueError(f"raw_days must be at least 1; got {raw_days}")
        db = quote_ident(self.database)
        try:
            existing = self._retention_policies()
        except QueryError as err:
            if "database not found" not in str(err):
                raise
            # "raw" as the first policy: InfluxDB then makes no INF "autogen" policy
            self.query_raw(
                f"CREATE DATABASE {db} WITH DURATION {int(raw_days)}d REPLICATION 1 "
                f"NAME {quote_ident(RP_RAW)}",
                db="",
            )
            existing = self._retention_policies()
        for pol in RETENTION_POLICIES.values():
            if pol.name in existing:
                continue
            duration = f"{int(raw_days)}d" if pol.name == RP_RAW else pol.duration
            self.query_raw(
                f"CREATE RETENTION POLICY {quote_ident(pol.name)} ON {db} "
                f"DURATION {duration} REPLICATION 1{' DEFAULT' if pol.default else ''}",
                db="",
            )
