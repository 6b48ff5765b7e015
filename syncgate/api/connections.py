"""Each platform's connection: breaker, deliveries waiting, last call and error, API allowance."""

from fastapi import APIRouter
from pydantic import BaseModel

from syncgate.api.deps import AdminDep, SessionDep, SettingsDep
from syncgate.connections.status import ConnectionState, connection_states
from syncgate.errors import error_responses

router = APIRouter(
    prefix="/api", tags=["operations"], dependencies=[AdminDep], responses=error_responses(401)
)


class ConnectionList(BaseModel):
    items: list[ConnectionState]


@router.get("/connections")
async def list_connections(session: SessionDep, settings: SettingsDep) -> ConnectionList:
    """HubSpot and Salesforce: e.g. "Salesforce unavailable since …, 12 waiting"."""
    return ConnectionList(items=await connection_states(session, settings))
