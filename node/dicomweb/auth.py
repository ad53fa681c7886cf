"""Who may use /dicom-web: bearer tokens or HTTP basic users, secrets from environment variables.

Policy (``dicomweb.auth`` in config.yaml): on a loopback ``node.http_bind`` nothing is asked by
default; on any other address every DICOMweb request needs credentials ("auto"). ``enabled``
true/false forces it, except that STOW-RS (a write) is never open on a non-loopback address:
with no credentials configured there, every store answers 401.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass

from fastapi import HTTPException, Request

from node.config import ConfigError, Settings

log = logging.getLogger(__name__)

REALM = "SharpRay DICOMweb"
CHALLENGE = f'Bearer realm="{REALM}", Basic realm="{REALM}"'


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 and localhost; anything else (0.0.0.0 and :: included) is not."""
    h = host.strip().strip("[]").lower()
    if h == "localhost":
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Credentials:
    tokens: tuple[bytes, ...]
    users: Mapping[str, bytes]  # user name -> password

    @property
    def configured(self) -> bool:
        return bool(self.tokens or self.users)


def load_credentials(settings: Settings, environ: Mapping[str, str] | None = None) -> Credentials:
    """Read the secrets the configuration names; a missing or empty variable is a ConfigError."""
    env = os.environ if environ is None else environ
    auth = settings.dicomweb.auth

    def secret(var: str, what: str) -> bytes:
        value = env.get(var, "")
        if not value:
            raise ConfigError(
                f"dicomweb.auth.{what} names environment variable {var!r}, which is not set"
            )
        return value.encode("utf-8")

    tokens = tuple(secret(v, "bearer_token_envs") for v in auth.bearer_token_envs)
    users = {user: secret(var, "basic_users") for user, var in auth.basic_users.items()}
    return Credentials(tokens, users)


class Guard:
    """Decides, per request, whether credentials are needed and whether the given ones are valid."""

    def __init__(self, settings: Settings, environ: Mapping[str, str] | None = None) -> None:
        self.loopback = is_loopback(settings.node.http_bind)
        enabled = settings.dicomweb.auth.enabled
        self.reads_need_auth = enabled is True or (enabled == "auto" and not self.loopback)
        self.writes_need_auth = self.reads_need_auth or not self.loopback
        self.credentials = load_credentials(settings, environ)
        if (self.reads_need_auth or self.writes_need_auth) and not self.credentials.configured:
            log.warning(
                "DICOMweb needs credentials on %s but none are configured (dicomweb.auth): "
                "%s will answer 401",
                settings.node.http_bind,
                "every DICOMweb request" if self.reads_need_auth else "STOW-RS",
            )

    def check(self, request: Request, write: bool) -> None:
        """Raise 401 unless the request may go on."""
        if not (self.writes_need_auth if write else self.reads_need_auth):
            return
        if not self.credentials.configured:
            raise HTTPException(
                401,
                detail="credentials are required here and none are configured on the node "
                "(dicomweb.auth)",
                headers={"WWW-Authenticate": CHALLENGE},
            )
        if not self._valid(request.headers.get("authorization", "")):
            raise HTTPException(
                401,
                detail="missing or invalid credentials (bearer token or HTTP basic)",
                headers={"WWW-Authenticate": CHALLENGE},
            )

    def _valid(self, header: str) -> bool:
        scheme, _, value = header.strip().partition(" ")
        value = value.strip()
        if scheme.lower() == "bearer" and value:
            given = value.encode("utf-8", "replace")
            # compare with every token (no early exit that would time which one matched)
            return any([hmac.compare_digest(given, t) for t in self.credentials.tokens])
        if scheme.lower() == "basic" and value:
            try:
                decoded = base64.b64decode(value, validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                return False
            user, sep, password = decoded.partition(":")
            expected = self.credentials.users.get(user)
            if not sep or expected is None:
                return False
            return hmac.compare_digest(password.encode("utf-8"), expected)
        return False
