"""`/health`: is the edge up, and which build is it."""

from fastapi import APIRouter
from pydantic import BaseModel

from worker.version import VERSION

router = APIRouter()


class Health(BaseModel):
    status: str
    version: str


@router.get("/health", response_model=Health, tags=["meta"])
@router.get("/api/health", response_model=Health, tags=["meta"])
async def health() -> Health:
    return Health(status="ok", version=VERSION)
