"""Accounts, roles, passwords and sessions."""

from .account_service import AccountService, NewAccount, SessionGrant
from .credentials import Passwords
from .models import Account, AccountStatus, AuthSettings, Principal, Role, Session

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
