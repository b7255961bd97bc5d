"""`POST /api/errors`: browsers and agents report what went wrong, for the admin view.

Write-only: nothing here reads reports back, so anyone may send one; each is size-capped
by its model and stored in the observability database.
"""

from typing import Annotated, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from worker.api.deps import DeploymentDep
from worker.logs import request_id

router = APIRouter()

MAX_MESSAGE_CHARS = 2_000
MAX_DETAIL_CHARS = 16_000


class ErrorReport(BaseModel):
    source: Literal["browser", "agent"]
    message: Annotated[str, Field(min_length=1, max_length=MAX_MESSAGE_CHARS)]
    detail: Annotated[str | None, Field(max_length=MAX_DETAIL_CHARS)] = None
    level: Literal["error", "warning"] = "error"


class Accepted(BaseModel):
    id: int


@router.post("/api/errors", status_code=202, response_model=Accepted, tags=["observability"])
async def report_error(report: ErrorReport, deployment: DeploymentDep) -> Accepted:
    result = (
        await deployment.env.OBSERVABILITY_DATABASE.prepare(
            "INSERT INTO errors (source, level, message, detail, request_id) VALUES (?, ?, ?, ?, ?)"
        )
        .bind(report.source, report.level, report.message, report.detail, request_id.get())
        .run()
    )
    return Accepted(id=int(result["meta"]["last_row_id"]))
