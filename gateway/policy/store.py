"""Synchronous reads and writes of contracts, agreement versions, acceptances and settings (writer thread)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlite_utils

from ..storage.records import parse_time
from .models import (
    AgreementRecord,
    AgreementVersion,
    ConnectionProvider,
    Contract,
    ContractStatus,
    InternetProvider,
    Plan,
)

__all__ = [
    "Acceptance",
    "ResidentAgreement",
    "acceptances_of",
    "get_setting",
    "insert_acceptance",
    "insert_opt_out",
    "insert_version",
    "load_contracts",
    "load_versions",
    "opt_out_of",
    "property_agreements",
    "record_of",
    "set_setting",
    "upsert_contract",
]


@dataclass(frozen=True, slots=True)
class Acceptance:
    """One recorded acceptance: the version, when, and from which client."""

    version: str
    accepted_at: datetime
    client: str | None


@dataclass(frozen=True, slots=True)
class ResidentAgreement:
    """A current resident of a property, every acceptance of theirs (oldest first) and their record (console)."""

    unit_id: str
    account_id: str
    username: str
    display_name: str | None
    status: str
    acceptances: tuple[Acceptance, ...]
    record: AgreementRecord

    @property
    def latest(self) -> Acceptance | None:
        """The latest acceptance."""
        return self.acceptances[-1] if self.acceptances else None


def _contract(row: dict[str, Any]) -> Contract:
    return Contract(
        property_id=row["property_id"],
        status=ContractStatus(row["status"]),
        status_reason=row["status_reason"],
        starts_at=datetime.fromisoformat(row["starts_at"]),
        ends_at=parse_time(row["ends_at"]),
        offers_service=bool(row["offers_service"]),
        internet=InternetProvider(
            ConnectionProvider(row["internet_provided_by"]),
            row["internet_provider_name"],
            row["internet_provider_contact"],
        ),
        plan=Plan.model_validate_json(row["plan"]),
        updated_at=parse_time(row["updated_at"]),
        updated_by=row["updated_by"],
    )


def load_contracts(db: sqlite_utils.Database) -> list[Contract]:
    """Every property's contract."""
    return [_contract(r) for r in db.table("contracts").rows]


def upsert_contract(db: sqlite_utils.Database, contract: Contract) -> None:
    """Record a property's contract, replacing the previous record (the audit log keeps every change)."""
    row = {
        "property_id": contract.property_id,
        "status": str(contract.status),
        "status_reason": contract.status_reason,
        "starts_at": contract.starts_at.isoformat(),
        "ends_at": None if contract.ends_at is None else contract.ends_at.isoformat(),
        "offers_service": int(contract.offers_service),
        "internet_provided_by": str(contract.internet.provided_by),
        "internet_provider_name": contract.internet.name,
        "internet_provider_contact": contract.internet.contact,
        "plan": contract.plan.model_dump_json(),
        "updated_at": None if contract.updated_at is None else contract.updated_at.isoformat(),
        "updated_by": contract.updated_by or "unknown",
    }
    db.table("contracts").upsert(row, pk="property_id")


def load_versions(db: sqlite_utils.Database) -> list[AgreementVersion]:
    """Every published agreement version, oldest effective first."""
    return [
        AgreementVersion(
            r["version"], datetime.fromisoformat(r["effective_at"]), r["text"], parse_time(r["published_at"])
        )
        for r in db.query("SELECT * FROM agreement_versions ORDER BY effective_at, published_at")
    ]


def insert_version(db: sqlite_utils.Database, version: AgreementVersion, by: str) -> bool:
    """Publish a version; False if that version string exists already (versions never change)."""
    if next(db.table("agreement_versions").rows_where("version = ?", [version.version], limit=1), None):
        return False
    db.table("agreement_versions").insert(
        {
            "version": version.version,
            "text": version.text,
            "effective_at": version.effective_at.isoformat(),
            "published_at": None if version.published_at is None else version.published_at.isoformat(),
            "published_by": by,
        }
    )
    return True


def acceptances_of(db: sqlite_utils.Database, account_id: str) -> list[Acceptance]:
    """An account's acceptances, oldest first."""
    return [
        Acceptance(r["version"], datetime.fromisoformat(r["accepted_at"]), r["client"])
        for r in db.query(
            "SELECT version, accepted_at, client FROM agreement_acceptances WHERE account_id = ? ORDER BY id",
            [account_id],
        )
    ]


def opt_out_of(db: sqlite_utils.Database, account_id: str) -> datetime | None:
    """When the account opted out of arbitration, if it did."""
    row = next(db.table("arbitration_opt_outs").rows_where("account_id = ?", [account_id], limit=1), None)
    return None if row is None else datetime.fromisoformat(row["recorded_at"])


def record_of(db: sqlite_utils.Database, account_id: str) -> AgreementRecord:
    """The account's agreement record, as the decision needs it."""
    return _record(acceptances_of(db, account_id), opt_out_of(db, account_id))


def _record(acceptances: list[Acceptance], opted_out_at: datetime | None) -> AgreementRecord:
    accepted: dict[str, datetime] = {}
    for a in acceptances:
        accepted.setdefault(a.version, a.accepted_at)
    return AgreementRecord(accepted, min(accepted.values(), default=None), opted_out_at)


def insert_acceptance(
    db: sqlite_utils.Database, account_id: str, version: str, at: datetime, client: str | None, session_id: str | None
) -> None:
    """Record an acceptance (with the age statement); accepting the same version again changes nothing."""
    db.conn.execute(
        "INSERT OR IGNORE INTO agreement_acceptances "
        "(account_id, version, accepted_at, age_confirmed, client, session_id) VALUES (?, ?, ?, 1, ?, ?)",
        (account_id, version, at.isoformat(), client, session_id),
    )


def insert_opt_out(db: sqlite_utils.Database, account_id: str, at: datetime, client: str | None) -> None:
    """Record the arbitration opt-out (once; it carries over to every later version)."""
    db.conn.execute(
        "INSERT OR IGNORE INTO arbitration_opt_outs (account_id, recorded_at, client) VALUES (?, ?, ?)",
        (account_id, at.isoformat(), client),
    )


_RESIDENTS = "a.property_id = ? AND a.role = 'resident' AND a.status != 'terminated'"


def property_agreements(db: sqlite_utils.Database, property_id: str) -> list[ResidentAgreement]:
    """Every current resident of a property with all their acceptances and their opt-out (two queries)."""
    history: dict[str, list[Acceptance]] = {}
    for r in db.query(
        "SELECT x.account_id, x.version, x.accepted_at, x.client FROM agreement_acceptances x "
        f"JOIN accounts a ON a.id = x.account_id WHERE {_RESIDENTS} ORDER BY x.id",
        [property_id],
    ):
        history.setdefault(r["account_id"], []).append(
            Acceptance(r["version"], datetime.fromisoformat(r["accepted_at"]), r["client"])
        )
    residents = db.query(
        "SELECT a.unit_id, a.id, a.username, a.display_name, a.status, o.recorded_at FROM accounts a "
        f"LEFT JOIN arbitration_opt_outs o ON o.account_id = a.id WHERE {_RESIDENTS} ORDER BY a.unit_id, a.username",
        [property_id],
    )
    return [
        ResidentAgreement(
            r["unit_id"],
            r["id"],
            r["username"],
            r["display_name"],
            r["status"],
            tuple(history.get(r["id"], ())),
            _record(history.get(r["id"], []), parse_time(r["recorded_at"])),
        )
        for r in residents
    ]


def get_setting(db: sqlite_utils.Database, key: str) -> str | None:
    """A gateway-wide setting."""
    row = next(db.table("gateway_settings").rows_where("key = ?", [key], limit=1), None)
    return None if row is None else row["value"]


def set_setting(db: sqlite_utils.Database, key: str, value: str | None, at: datetime, by: str) -> None:
    """Set a gateway-wide setting."""
    db.table("gateway_settings").upsert(
        {"key": key, "value": value, "updated_at": at.isoformat(), "updated_by": by}, pk="key"
    )
