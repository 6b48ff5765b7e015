"""Each platform's connection: breaker, deliveries waiting, last call and error, API allowance."""

from fastapi import APIRouter
from pydantic import BaseModel

from syncgate.api import examples
from syncgate.api.deps import AdminDep, SessionDep, SettingsDep
from syncgate.connections.status import ConnectionState, connection_states
from syncgate.errors import error_responses

router = APIRouter(
    prefix="/api", tags=["operations"], dependencies=[AdminDep], responses=error_responses(401)
)


class ConnectionList(BaseModel):
    items: list[ConnectionState]


@router.get(
    "/connections",
    summary="Each platform's connection state",
    responses=examples.answers(200, examples.CONNECTIONS),
)
async def list_connections(session: SessionDep, settings: SettingsDep) -> ConnectionList:
    """HubSpot and Salesforce: configured or not, the circuit breaker ("Salesforce unavailable
    since …, 12 waiting"), the last successful call and error, and the API allowance used."""
    return ConnectionList(items=await connection_states(session, settings))
