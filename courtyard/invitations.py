"""The invitation store: SQLite, tokens kept only as SHA-256; the marks' 10-minute slot.

Tables: ``invitation`` (id, site, token_sha256, created_ms, expires_ms, revoked_ms)
and ``last_mark`` (invitation id -> time of the last *counted* mark). There is no
name, address or e-mail anywhere: an invitation is a random letter for "a household
of courtyard S". Thread-safe (one connection behind a lock; the web app calls it from
its thread pool).
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from klankkast.courtyard import tokens
from klankkast.courtyard.errors import CourtyardError

__all__ = ["Invitation", "InvitationRefused", "SqliteInvitations"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS invitation (
    id TEXT PRIMARY KEY,
    site TEXT NOT NULL,
    token_sha256 TEXT NOT NULL UNIQUE,
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL,
    revoked_ms INTEGER
);
CREATE TABLE IF NOT EXISTS last_mark (
    invitation_id TEXT PRIMARY KEY REFERENCES invitation(id),
    t_ms INTEGER NOT NULL
);
"""

Reason = Literal["unknown", "revoked", "expired"]


class InvitationRefused(CourtyardError):
    """An invitation token or session that does not open a page; ``reason`` says why."""

    def __init__(self, reason: Reason) -> None:
        super().__init__(f"invitation refused: {reason}")
        self.reason: Reason = reason


@dataclass(frozen=True, slots=True)
class Invitation:
    id: str
    site: str
    created_ms: int
    expires_ms: int
    revoked_ms: int | None

    def check(self, now_ms: int) -> None:
        """Raise :class:`InvitationRefused` unless valid at ``now_ms``."""
        if self.revoked_ms is not None:
            raise InvitationRefused("revoked")
        if now_ms >= self.expires_ms:
            raise InvitationRefused("expired")


class SqliteInvitations:
    """Invitations in one SQLite file (created on :meth:`start`)."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL: a commit survives a crash of the program without an fsync per
        # mark (an fsync in the event loop stalls every page); a power cut may lose the
        # last slots, so a household could mark once more within its 10 minutes
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA busy_timeout=5000")
        db.executescript(_SCHEMA)
        self._db = db

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("SqliteInvitations.start() was not called")
        return self._db

    @staticmethod
    def _row(row: tuple[str, str, int, int, int | None]) -> Invitation:
        return Invitation(row[0], row[1], int(row[2]), int(row[3]), row[4])

    _COLS = "id, site, created_ms, expires_ms, revoked_ms"

    def create(
        self, site: str, count: int, now_ms: int, valid_days: int
    ) -> list[tuple[Invitation, str]]:
        """``count`` new invitations of ``site``: each with its token (shown once, never stored)."""
        out = []
        expires = now_ms + valid_days * 86_400_000
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                for _ in range(count):
                    token = tokens.new_token()
                    inv = Invitation(tokens.new_invitation_id(), site, now_ms, expires, None)
                    self.db.execute(
                        "INSERT INTO invitation VALUES (?, ?, ?, ?, ?, NULL)",
                        (inv.id, site, tokens.token_hash(token), now_ms, expires),
                    )
                    out.append((inv, token))
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
        return out

    def by_token(self, token: str) -> Invitation:
        """The invitation of ``token`` (not checked for validity); unknown -> refused."""
        if not tokens.well_formed_token(token):
            raise InvitationRefused("unknown")
        with self._lock:
            row = self.db.execute(
                f"SELECT {self._COLS} FROM invitation WHERE token_sha256 = ?",
                (tokens.token_hash(token),),
            ).fetchone()
        if row is None:
            raise InvitationRefused("unknown")
        return self._row(row)

    def get(self, invitation_id: str) -> Invitation | None:
        with self._lock:
            row = self.db.execute(
                f"SELECT {self._COLS} FROM invitation WHERE id = ?", (invitation_id,)
            ).fetchone()
        return None if row is None else self._row(row)

    def revoke(self, invitation_id: str, now_ms: int) -> bool:
        """Withdraw an invitation (its sessions stop at once); ``False`` if unknown."""
        with self._lock:
            cur = self.db.execute(
                "UPDATE invitation SET revoked_ms = ? WHERE id = ? AND revoked_ms IS NULL",
                (now_ms, invitation_id),
            )
            if cur.rowcount:
                return True
            return (
                self.db.execute(
                    "SELECT 1 FROM invitation WHERE id = ?", (invitation_id,)
                ).fetchone()
                is not None
            )

    def all(self, site: str | None = None) -> list[Invitation]:
        q = f"SELECT {self._COLS} FROM invitation"
        args: tuple[str, ...] = ()
        if site is not None:
            q += " WHERE site = ?"
            args = (site,)
        with self._lock:
            rows = self.db.execute(q + " ORDER BY site, created_ms, id", args).fetchall()
        return [self._row(r) for r in rows]

    def last_mark_ms(self, invitation_id: str) -> int | None:
        with self._lock:
            row = self.db.execute(
                "SELECT t_ms FROM last_mark WHERE invitation_id = ?", (invitation_id,)
            ).fetchone()
        return None if row is None else int(row[0])

    def set_last_mark(self, invitation_id: str, t_ms: int) -> None:
        with self._lock:
            self.db.execute(
                "INSERT INTO last_mark VALUES (?, ?) ON CONFLICT(invitation_id) "
                "DO UPDATE SET t_ms = excluded.t_ms",
                (invitation_id, t_ms),
            )
