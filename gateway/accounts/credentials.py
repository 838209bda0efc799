"""Passwords (argon2), bearer tokens and activation codes; only hashes are ever stored."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from ..errors import InvalidRequest

__all__ = [
    "MAX_PASSWORD_LENGTH",
    "MIN_PASSWORD_LENGTH",
    "Passwords",
    "check_password_policy",
    "code_digest",
    "digests_equal",
    "new_activation_code",
    "new_token",
    "token_digest",
]

MIN_PASSWORD_LENGTH = 10
# argon2 hashes whatever it is given; a bound keeps a login request from costing arbitrary CPU.
MAX_PASSWORD_LENGTH = 256
TOKEN_PREFIX = "agw_"
# argon2 threads at once: each holds its memory cost (19 MiB) and a core; the rest queue, off the event loop.
HASHING_THREADS = 2


class Passwords:
    """argon2id hashing with OWASP's parameters; hashes made with others still verify (they carry their own).

    The async methods run argon2 on a small pool of its own (``HASHING_THREADS``), never on the event loop.
    """

    def __init__(self, hasher: PasswordHasher | None = None, *, threads: int = HASHING_THREADS) -> None:
        # OWASP's argon2id configuration (19 MiB, 2 passes, 1 lane): argon2-cffi's default takes 64 MiB per hash,
        # which alone lifted the gateway's peak memory by half with 2,000 devices.
        self._hasher = hasher or PasswordHasher(time_cost=2, memory_cost=19_456, parallelism=1)
        # Verified against when there is no password to check (unknown or pending username), with this hasher's
        # own parameters, so a miss costs as much as a wrong password.
        self._dummy = self._hasher.hash(secrets.token_urlsafe(16))
        # Threads start on first use and belong to no event loop, so one instance may serve several loops (tests).
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="argon2")

    def hash(self, password: str) -> str:
        """An argon2id hash of ``password`` (blocking: on the event loop use ``hash_async``)."""
        return self._hasher.hash(password)

    def verify(self, stored: str | None, password: str) -> bool:
        """Whether ``password`` matches ``stored`` (None: no password set; still costs one verification)."""
        try:
            return self._hasher.verify(stored or self._dummy, password) and stored is not None
        except (VerificationError, InvalidHashError):
            return False

    async def hash_async(self, password: str) -> str:
        """``hash`` on the bounded argon2 pool."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, self.hash, password)

    async def verify_async(self, stored: str | None, password: str) -> bool:
        """``verify`` on the bounded argon2 pool."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, self.verify, stored, password)


def check_password_policy(password: str, username: str) -> None:
    """Refuse passwords that are too short, too long, or the username."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidRequest(
            f"password must be at least {MIN_PASSWORD_LENGTH} characters", code="password_too_weak", field="password"
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidRequest(
            f"password must be at most {MAX_PASSWORD_LENGTH} characters", code="password_too_long", field="password"
        )
    if password.casefold() == username.casefold() or len(set(password)) < 4:
        raise InvalidRequest("password is too easy to guess", code="password_too_weak", field="password")


def new_token() -> str:
    """An opaque bearer token (256 random bits)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def new_activation_code() -> str:
    """A one-time activation code a person can type (about 80 random bits)."""
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I
    raw = "".join(secrets.choice(alphabet) for _ in range(16))
    return "-".join(raw[i : i + 4] for i in range(0, 16, 4))


def token_digest(token: str) -> str:
    """SHA-256 of a bearer token: enough for a 256-bit random secret, and fast on every request."""
    return hashlib.sha256(token.encode()).hexdigest()


def code_digest(code: str) -> str:
    """SHA-256 of an activation code, ignoring case, spaces and dashes as people type them."""
    normal = "".join(ch for ch in code.upper() if ch.isalnum())
    return hashlib.sha256(normal.encode()).hexdigest()


def digests_equal(a: str, b: str) -> bool:
    """Constant-time comparison of two digests."""
    return hmac.compare_digest(a, b)
