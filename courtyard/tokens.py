"""Invitation tokens, session cookies, CSRF tokens and the household hash; pure.

* An invitation token is 32 random bytes (``secrets.token_urlsafe``). The server keeps
  only its SHA-256 (a 256-bit random secret needs no salt or slow hash: it cannot be
  guessed, only stolen, and the hash of a stolen database does not open the page).
* The household a mark comes from is ``HMAC-SHA256(key, "household|" + invitation id)``
  truncated to 16 bytes: stable per household, so marks can be counted per household,
  but without the server's key it cannot be linked to an invitation, a letter or an
  address. Neither the token nor the invitation id ever leaves the server.
* The session cookie is ``<invitation id>.<issued s>.<HMAC>``; the CSRF token of the
  mark form is an HMAC of the session (a synchronizer token that needs no storage).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import Final

__all__ = [
    "csrf_token",
    "household_hash",
    "new_invitation_id",
    "new_token",
    "session_value",
    "token_hash",
    "verify_csrf",
    "verify_session",
]

_TOKEN_RE: Final = re.compile(r"[A-Za-z0-9_-]{20,64}")
_ID_RE: Final = re.compile(r"[a-z0-9]{8}")


def new_token() -> str:
    """A new invitation token (43 URL-safe characters, 256 bits)."""
    return secrets.token_urlsafe(32)


def new_invitation_id() -> str:
    """A short public id of an invitation (printed on the letter, used by ``revoke``)."""
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    return "".join(secrets.choice(alphabet) for _ in range(8))


def well_formed_token(token: str) -> bool:
    return _TOKEN_RE.fullmatch(token) is not None


def token_hash(token: str) -> str:
    """SHA-256 of the token, hex: what the invitation store keeps."""
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def _mac(key: bytes, text: str) -> str:
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def household_hash(key: bytes, invitation_id: str) -> str:
    """The keyed hash of a household (32 hex digits) written with its marks."""
    return _mac(key, "household|" + invitation_id)[:32]


def session_value(key: bytes, invitation_id: str, issued_s: int) -> str:
    """The session cookie's value."""
    body = f"{invitation_id}.{issued_s}"
    return f"{body}.{_mac(key, 'session|' + body)}"


def verify_session(key: bytes, value: str, now_s: int, max_age_s: int) -> str | None:
    """The invitation id of a valid, unexpired session cookie, else ``None``."""
    parts = value.split(".")
    if len(parts) != 3 or not _ID_RE.fullmatch(parts[0]) or not parts[1].isdigit():
        return None
    body = f"{parts[0]}.{parts[1]}"
    if not hmac.compare_digest(parts[2], _mac(key, "session|" + body)):
        return None
    issued = int(parts[1])
    if not (issued <= now_s + 300 and now_s - issued <= max_age_s):
        return None
    return parts[0]


def csrf_token(key: bytes, session: str) -> str:
    """The CSRF token of the mark form for this session."""
    return _mac(key, "csrf|" + session)


def verify_csrf(key: bytes, session: str, token: str) -> bool:
    return bool(token) and hmac.compare_digest(token, csrf_token(key, session))
