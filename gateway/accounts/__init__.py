"""Accounts, roles, passwords and sessions."""

from .credentials import Passwords
from .models import Account, AccountStatus, Principal, Role, Session
from .service import AccountService, AuthSettings, NewAccount, SessionGrant

__all__ = [
    "Account",
    "AccountService",
    "AccountStatus",
    "AuthSettings",
    "NewAccount",
    "Passwords",
    "Principal",
    "Role",
    "Session",
    "SessionGrant",
]
