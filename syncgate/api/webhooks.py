"""Webhook intake (§4): verify, store durably in the inbox, acknowledge.

The intake is the busiest path, so both routes stay lean: they take the `Request`, call their
verification as plain functions (no `Depends` chain) and store through a Core connection in
one short transaction of their own (no ORM session), committed before they answer, so a failed
commit is never acknowledged. The dependency chain, the session and the ORM insert were more
than half of an intake request's CPU.
"""

import hmac
import logging
from collections.abc import Callable, Coroutine
from functools import lru_cache
from typing import Annotated, Any, NoReturn

from anyio import CapacityLimiter, to_thread
from fastapi import APIRouter, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import AnyHttpUrl, BaseModel

from syncgate.api import examples
from syncgate.api.deps import get_engine, get_settings
from syncgate.api.examples import answers, body
from syncgate.config import Settings
from syncgate.delivery.worker import Worker
from syncgate.errors import AppError, NotFound, error_body, is_store_outage
from syncgate.inbox.models import KIND_MAX_LENGTH
from syncgate.inbox.store import store_hubspot_events, store_salesforce_message
from syncgate.metrics import WEBHOOK_EVENTS
from syncgate.platforms.hubspot.events import HubSpotEvent, InvalidBody, parse_body
from syncgate.platforms.hubspot.signature import SignatureError, verify_request
from syncgate.platforms.salesforce.outbound_message import (
    ACK_RESPONSE,
    MalformedMessage,
    OutboundMessage,
    organization_id_hint,
    organization_matches,
    parse_outbound_message,
    soap_fault,
)
from syncgate.security.throttle import Credential, record_failure, refuse_if_throttled

SOAP_CONTENT_TYPE = "text/xml; charset=utf-8"

log = logging.getLogger("syncgate.webhooks")


def _configured(value: str | None) -> str | None:
    """A secret-like setting, or None when it is unset or blank (blank never acts as a key)."""
    if value is None or not value.strip():
        return None
    return value


class BadRequest(AppError):
    status_code = 400
    code = "bad_request"


class InvalidSignature(AppError):
    status_code = 401
    code = "invalid_signature"


class Forbidden(AppError):
    status_code = 403
    code = "forbidden"


def _signed_uri(request: Request, public_url: str | None) -> str:
    """The URI HubSpot signed: our public origin (or the request's), then path and query as sent.

    The path is the raw one (starlette's `url.path` is percent-decoded) and the query is taken
    byte for byte; neither is normalised, so the 12 v3 escapes are decoded only by the verifier.
    """
    raw_path = request.scope.get("raw_path")
    path = raw_path.decode("utf-8", "replace") if raw_path else str(request.scope["path"])
    query = request.scope.get("query_string", b"").decode("utf-8", "replace")
    if public_url is None:
        base = request.base_url
        origin = f"{base.scheme}://{base.netloc}"
    else:
        origin = public_url.rstrip("/")
    return origin + path + (f"?{query}" if query else "")


def _public_origin(settings: Settings) -> str | None:
    """SYNCGATE_PUBLIC_URL as the settings parse it, also when a copy was given a plain string."""
    value = settings.public_url
    if value is None:
        return None
    return _normalised_url(str(value))


@lru_cache(maxsize=8)
def _normalised_url(value: str) -> str | None:
    # Cached: parsing the same setting on every request is measurable on the intake path.
    if not value.strip():
        return None
    return str(AnyHttpUrl(value.strip()))


async def verified_hubspot_events(
    request: Request, settings: Settings
) -> list[tuple[HubSpotEvent, dict[str, Any]]]:
    """The events of a request whose HubSpot signature verifies; fails closed."""
    secret = _configured(settings.hubspot_client_secret)
    if secret is None:
        raise NotFound("HubSpot intake is disabled (no SYNCGATE_HUBSPOT_CLIENT_SECRET)")
    refuse_if_throttled(request, Credential.HUBSPOT)
    body = await request.body()  # within SYNCGATE_MAX_BODY_BYTES (security.guard)
    public_url = _public_origin(settings)
    try:
        verify_request(
            client_secret=secret,
            method=request.method,
            uri=_signed_uri(request, public_url),
            body=body,
            headers=request.headers,
            require_v3=settings.hubspot_require_v3,
        )
    except SignatureError as error:
        reason = f"HubSpot signature rejected: {error}"
        record_failure(request, Credential.HUBSPOT, reason)
        raise InvalidSignature(reason) from None
    try:
        return parse_body(body)
    except InvalidBody as error:
        raise BadRequest(str(error)) from None


class Acknowledgement(BaseModel):
    accepted: int
    duplicates: int


class HubSpotRoute(APIRoute):
    """Counts every refused HubSpot request; the app's error handlers render the JSON answer."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def counting_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except AppError:
                WEBHOOK_EVENTS.labels("hubspot", "rejected").inc()
                raise
            except Exception as error:
                if not is_store_outage(error):
                    raise
                WEBHOOK_EVENTS.labels("hubspot", "rejected").inc()
                # Every kind of outage (not only DBAPIError) is a 503, so HubSpot retries.
                return JSONResponse(
                    error_body("store_unavailable", "the database is unavailable; retry later"),
                    status_code=503,
                    headers={"Retry-After": "5"},
                )

        return counting_handler


hubspot_router = APIRouter(tags=["webhooks"], route_class=HubSpotRoute)


def _wake_worker(request: Request) -> None:
    """A worker in this process processes new events now instead of at its next poll."""
    worker: Worker | None = getattr(request.app.state, "worker", None)
    if worker is not None:
        worker.wake()


# Bound once: `labels()` looks the child up under a lock on every call.
_HUBSPOT_ACCEPTED = WEBHOOK_EVENTS.labels("hubspot", "accepted")
_HUBSPOT_DUPLICATE = WEBHOOK_EVENTS.labels("hubspot", "duplicate")


@hubspot_router.post(
    "/webhooks/hubspot",
    summary="HubSpot webhook",
    response_model=Acknowledgement,
    openapi_extra=body(examples.HUBSPOT_EVENTS, schema=examples.HUBSPOT_EVENTS_SCHEMA),
    responses={
        **answers(200, examples.ACKNOWLEDGED),
        400: {"description": "not an array of events"},
        401: {"description": "missing, wrong or stale signature"},
        404: {"description": "HubSpot intake disabled"},
        413: {"description": "body too large"},
        429: {"description": "too many failed signatures from this address or overall"},
        503: {"description": "store unavailable; HubSpot retries"},
    },
)
async def hubspot_webhook(request: Request) -> JSONResponse:
    """HubSpot calls this with a JSON array of up to 1,000 contact events, signed with
    `X-HubSpot-Signature-v3` (or v1/v2). The events are stored before the answer; repeats
    (also redeliveries with a higher `attemptNumber`) count as duplicates."""
    events = await verified_hubspot_events(request, get_settings(request))
    async with get_engine(request).begin() as connection:
        accepted = await store_hubspot_events(connection, events)
    duplicates = len(events) - accepted
    _HUBSPOT_ACCEPTED.inc(accepted)
    _HUBSPOT_DUPLICATE.inc(duplicates)
    if accepted:
        _wake_worker(request)
    return JSONResponse({"accepted": accepted, "duplicates": duplicates})


class SoapRoute(APIRoute):
    """Answers every failure of a Salesforce route with a SOAP Fault and the right status."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def soap_handler(request: Request) -> Response:
            headers: dict[str, str] | None = None
            try:
                return await handler(request)
            except AppError as error:
                status, message, headers = error.status_code, error.message, error.headers
            except RequestValidationError:
                status, message = 400, "invalid request parameters"
            except Exception as error:
                if is_store_outage(error):
                    status, message = 503, "the store is unavailable; retry later"
                else:
                    # Salesforce shows the faultstring in its Outbound Message monitor; a
                    # plain-text 500 would only read as "invalid XML response" there.
                    log.exception("Salesforce Outbound Message failed")
                    status, message = 500, "internal error; retry later"
            if status >= 500:
                headers = {"Retry-After": "5"}
            WEBHOOK_EVENTS.labels("salesforce", "rejected").inc()
            return Response(
                soap_fault(message, client_fault=status < 500),
                status_code=status,
                media_type=SOAP_CONTENT_TYPE,
                headers=headers,
            )

        return soap_handler


salesforce_router = APIRouter(tags=["webhooks"], route_class=SoapRoute)
_SALESFORCE_ACCEPTED = WEBHOOK_EVENTS.labels("salesforce", "accepted")
_SALESFORCE_DUPLICATE = WEBHOOK_EVENTS.labels("salesforce", "duplicate")


def _refuse_other_org(request: Request) -> NoReturn:
    # Without a webhook token the org id is all a sender has to know: a failure like a wrong token.
    reason = "OrganizationId is not this service's Salesforce org"
    record_failure(request, Credential.SALESFORCE, reason)
    raise Forbidden(reason)


# A large message takes tens of milliseconds to parse: it is parsed in a worker thread, so the
# event loop keeps answering, and one at a time, so the loop shares the GIL with one parse only
# and a flood of messages waits instead of taking a thread each.
_PARSERS = CapacityLimiter(1)


async def verified_outbound_message(
    request: Request, settings: Settings, token: str | None
) -> OutboundMessage:
    """The Outbound Message of a request from our org (and with our token, when one is set)."""
    org_id = _configured(settings.salesforce_org_id)
    if org_id is None:
        raise NotFound("Salesforce intake is disabled (no SYNCGATE_SALESFORCE_ORG_ID)")
    refuse_if_throttled(request, Credential.SALESFORCE)
    expected_token = _configured(settings.salesforce_webhook_token)
    if expected_token is not None and not hmac.compare_digest(
        (token or "").encode(), expected_token.encode()
    ):
        reason = "the token query parameter is missing or wrong"
        record_failure(request, Credential.SALESFORCE, reason)
        raise InvalidSignature(reason)
    body = await request.body()
    claimed = organization_id_hint(body)
    if claimed is not None and not organization_matches(claimed, org_id):
        _refuse_other_org(request)
    try:
        message = await to_thread.run_sync(parse_outbound_message, body, limiter=_PARSERS)
    except MalformedMessage as error:
        raise BadRequest(f"not a Salesforce Outbound Message: {error}") from None
    if not organization_matches(message.organization_id, org_id):
        _refuse_other_org(request)
    for position, notification in enumerate(message.notifications, start=1):
        if len(notification.object_type) > KIND_MAX_LENGTH:
            # No Salesforce object name is this long (API names have at most 43 characters).
            raise BadRequest(
                f"not a Salesforce Outbound Message: Notification #{position} sObject type"
                f" is longer than {KIND_MAX_LENGTH} characters"
            )
    return message


@salesforce_router.post(
    "/webhooks/salesforce",
    summary="Salesforce Outbound Message",
    response_class=Response,
    openapi_extra=body(
        examples.OUTBOUND_MESSAGE, "text/xml", schema={"type": "string", "format": "xml"}
    ),
    responses={
        200: {
            "content": {"text/xml": {"example": examples.ACK}},
            "description": "SOAP acknowledgement",
        },
        400: {"description": "SOAP Fault: not a well-formed Outbound Message"},
        401: {"description": "SOAP Fault: token missing or wrong"},
        403: {"description": "SOAP Fault: another org"},
        404: {"description": "Salesforce intake disabled"},
        413: {"description": "body too large"},
        429: {"description": "SOAP Fault: too many wrong tokens or org ids"},
        503: {"description": "store unavailable; Salesforce retries"},
    },
)
async def salesforce_webhook(
    request: Request,
    token: Annotated[str | None, Query(description="SYNCGATE_SALESFORCE_WEBHOOK_TOKEN")] = None,
) -> Response:
    """Salesforce calls this with an Outbound Message (SOAP 1.1) of up to 100 Lead or Contact
    notifications from our org. It is stored before the SOAP `Ack`; a fault makes Salesforce
    retry. Set the endpoint to `/webhooks/salesforce?token=<SYNCGATE_SALESFORCE_WEBHOOK_TOKEN>`."""
    message = await verified_outbound_message(request, get_settings(request), token)
    async with get_engine(request).begin() as connection:
        accepted = await store_salesforce_message(connection, message)
    _SALESFORCE_ACCEPTED.inc(accepted)
    _SALESFORCE_DUPLICATE.inc(len(message.notifications) - accepted)
    if accepted:
        _wake_worker(request)
    return Response(ACK_RESPONSE, media_type=SOAP_CONTENT_TYPE)
