"""/operator/storage: retention per category, the database's size budget, its state, and a purge on demand."""

from __future__ import annotations

from fastapi import APIRouter

from ..deps import Ctx, Operator
from ..problems import PROBLEM_RESPONSES
from ..schemas_storage import (
    PurgeOut,
    RetentionOut,
    RetentionRequest,
    StorageOut,
    purge_out,
    retention_out,
    storage_out,
)

__all__ = ["router"]

router = APIRouter(prefix="/operator/storage", tags=["operator"], responses=PROBLEM_RESPONSES)


@router.get("", operation_id="getStorage")
async def get_storage(principal: Operator, ctx: Ctx) -> StorageOut:
    """The database's size against its budget (ok, thinning, over_budget), the last purge, and the retention."""
    retention = ctx.services.retention
    return storage_out(await retention.status(), retention.policy)


@router.get("/retention", operation_id="getRetention")
async def get_retention(principal: Operator, ctx: Ctx) -> RetentionOut:
    """Days kept per category (with defaults and floors), the size budget and the watermark."""
    return retention_out(ctx.services.retention.policy)


@router.put("/retention", operation_id="setRetention")
async def set_retention(body: RetentionRequest, principal: Operator, ctx: Ctx) -> RetentionOut:
    """Change retention days (only the categories named) and/or the budget; audited; the purge runs at once."""
    policy = await ctx.services.retention.update(
        principal, days=body.days, budget_bytes=body.budget_bytes, watermark_percent=body.watermark_percent
    )
    return retention_out(policy)


@router.post("/purge", operation_id="purgeNow")
async def purge(principal: Operator, ctx: Ctx) -> PurgeOut:
    """Run a purge pass now (it also runs in the background); audited."""
    return purge_out(await ctx.services.retention.purge(principal))
