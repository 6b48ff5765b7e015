"""Request and response examples of the OpenAPI document (/docs), in one place, and the helpers
that put them on a route: `responses=answers(200, SEGMENT)`, `openapi_extra=body(SEGMENT_IN)`."""

from typing import Any

from syncgate.platforms.salesforce.outbound_message import ACK_RESPONSE

JSON = "application/json"


def answers(status: int, example: Any, media_type: str = JSON) -> dict[int | str, Any]:
    """`responses=` entry giving the success answer an example (FastAPI keeps its schema)."""
    return {status: {"content": {media_type: {"example": example}}}}


def body(example: Any, media_type: str = JSON, schema: Any = None) -> dict[str, Any]:
    """`openapi_extra=` giving the request body an example (and a schema, for a route that
    reads the raw body itself)."""
    content: dict[str, Any] = {"example": example}
    if schema is not None:
        content["schema"] = schema
    request_body: dict[str, Any] = {"content": {media_type: content}}
    if schema is not None:
        request_body["required"] = True
    return {"requestBody": request_body}


AT = "2026-11-30T09:15:02.417000Z"
FILTER = {
    "all": [
        {"property": "lifecyclestage", "operator": "eq", "value": "customer"},
        {"property": "country", "operator": "in", "value": ["DK", "SE"]},
    ]
}
CONTACT = {
    "id": 42,
    "email": "ada@example.com",
    "hubspot_id": "151",
    "salesforce_id": "00Q5g00000B3xYzEAJ",
    "salesforce_object": "Lead",
    "properties": {
        "email": "ada@example.com",
        "firstname": "Ada",
        "lastname": "Lovelace",
        "lifecyclestage": "customer",
        "country": "DK",
    },
}
CONTACT_PAGE = {"items": [CONTACT], "next": "NDI"}
SEGMENT_IN = {"name": "Nordic customers", "type": "active", "filter": FILTER}
SEGMENT = {
    "id": 3,
    **SEGMENT_IN,
    "status": "ready",
    "size": 1280,
    "created_at": AT,
    "updated_at": AT,
}
SEGMENT_PATCH = {"name": "Nordic and Finnish customers"}
STATIC_SEGMENT = {**SEGMENT, "id": 4, "name": "Event guests", "type": "static", "filter": None}
MEMBERS_IN = {"emails": ["ada@example.com", "grace@example.com"]}
MEMBERS_CHANGED = {**STATIC_SEGMENT, "size": 2, "changed": 1, "not_found": ["grace@example.com"]}
PREVIEW = {"size": 1280, "sample": [CONTACT]}
INCLUSION_SEGMENT = {"segment_id": 3}
SETTINGS = {
    "inclusion_segment_id": 3,
    "create_hubspot_contacts_from": {"leads": True, "contacts": True},
    "new_hubspot_contacts_as": "Lead",
}
SETTINGS_PATCH = {"create_hubspot_contacts_from": {"contacts": False}}
MAPPINGS = {
    "items": [
        {
            "hubspot_property": "email",
            "lead_field": "Email",
            "contact_field": "Email",
            "rule": "two_way",
        },
        {
            "hubspot_property": "company",
            "lead_field": "Company",
            "contact_field": None,
            "rule": "prefer_salesforce_unless_blank",
        },
    ]
}
DECISION = {
    "id": 9001,
    "at": AT,
    "direction": "hubspot_to_salesforce",
    "decision": "skipped_not_in_segment",
    "contact_id": 42,
    "source_event": "hubspot:3f1c…",
    "detail": {"reason": "not in the inclusion segment 'Nordic customers'"},
}
DELIVERY = {
    "id": 17,
    "target": "salesforce",
    "operation": "update",
    "status": "dead",
    "attempts": 1,
    "last_error": "FIELD_CUSTOM_VALIDATION_EXCEPTION: Last name may not be Invalid",
    "next_attempt_at": AT,
    "contact_id": 42,
    "values": {"LastName": "Invalid"},
    "history": [
        {
            "at": AT,
            "attempt": 1,
            "outcome": "dead",
            "error": "FIELD_CUSTOM_VALIDATION_EXCEPTION: Last name may not be Invalid",
        }
    ],
    "created_at": AT,
    "delivered_at": None,
}
RETRIED = {"retried": 3}
SYNC_STATUS = {
    "inclusion_segment_id": 3,
    "in_inclusion_segment": True,
    "would_sync": True,
    "reason": "In the inclusion segment 'Nordic customers' (id 3); linked to Salesforce Lead"
    " 00Q5g00000B3xYzEAJ.",
    "last_decisions": [{**DECISION, "decision": "forwarded", "detail": {"reason": "in segment"}}],
    "pending_deliveries": 0,
    "dead_deliveries": [],
    "salesforce": {"id": "00Q5g00000B3xYzEAJ", "object": "Lead"},
}
JOB_CREATED = {"job_id": 12}
CONNECTIONS = {
    "items": [
        {
            "platform": "hubspot",
            "configured": True,
            "state": "available",
            "summary": "HubSpot available",
            "breaker": "closed",
            "unavailable_since": None,
            "next_probe_at": None,
            "consecutive_failures": 0,
            "waiting": 0,
            "jobs_waiting": False,
            "last_success_at": AT,
            "last_error": None,
            "last_error_at": None,
            "api_allowance": None,
        },
        {
            "platform": "salesforce",
            "configured": True,
            "state": "unavailable",
            "summary": "Salesforce unavailable since 2026-11-30 14:02:11 UTC, 12 waiting",
            "breaker": "open",
            "unavailable_since": "2026-11-30T14:02:11Z",
            "next_probe_at": "2026-11-30T14:04:51Z",
            "consecutive_failures": 5,
            "waiting": 12,
            "jobs_waiting": True,
            "last_success_at": "2026-11-30T14:01:58Z",
            "last_error": "503: Service Unavailable",
            "last_error_at": "2026-11-30T14:02:11Z",
            "api_allowance": {
                "used": 15302,
                "allowed": 100000,
                "percent": 15.3,
                "at": "2026-11-30T14:01:58Z",
                "jobs_stop_at_percent": 75,
                "deliveries_stop_at_percent": 95,
            },
        },
    ]
}
IMPORT_IN = {"object": "Lead", "ids": ["00Q5g00000B3xYzEAJ", "00Q5g00000B3xZ0EAJ"]}
JOB = {
    "id": 12,
    "kind": "salesforce_import",
    "status": "running",
    "total": 2,
    "succeeded": 1,
    "skipped": 0,
    "failed": 0,
    "error": None,
    "params": IMPORT_IN,
    "created_at": AT,
    "updated_at": AT,
    "finished_at": None,
}

HUBSPOT_EVENTS = [
    {
        "eventId": 1791434862,
        "subscriptionId": 4578255,
        "portalId": 62515,
        "appId": 424242,
        "occurredAt": 1764494102417,
        "subscriptionType": "contact.propertyChange",
        "attemptNumber": 0,
        "objectId": 151,
        "changeSource": "CRM_UI",
        "sourceId": "userId:52530071",
        "propertyName": "lifecyclestage",
        "propertyValue": "customer",
    },
    {
        "eventId": 1791434863,
        "subscriptionId": 4578256,
        "portalId": 62515,
        "appId": 424242,
        "occurredAt": 1764494103051,
        "subscriptionType": "contact.creation",
        "attemptNumber": 0,
        "objectId": 152,
        "changeFlag": "CREATED",
        "changeSource": "CRM_UI",
        "sourceId": "userId:52530071",
    },
]
HUBSPOT_EVENTS_SCHEMA = {
    "type": "array",
    "maxItems": 1000,
    "items": {
        "type": "object",
        "required": ["eventId", "subscriptionType", "objectId", "occurredAt"],
        "properties": {
            "eventId": {"type": "integer"},
            "subscriptionId": {"type": "integer"},
            "portalId": {"type": "integer"},
            "appId": {"type": "integer"},
            "occurredAt": {"type": "integer", "description": "milliseconds since the epoch"},
            "subscriptionType": {"type": "string", "example": "contact.propertyChange"},
            "attemptNumber": {"type": "integer"},
            "objectId": {"type": "integer"},
            "changeSource": {"type": "string"},
            "sourceId": {"type": "string"},
            "changeFlag": {"type": "string"},
            "propertyName": {"type": "string"},
            "propertyValue": {"type": "string"},
        },
        "additionalProperties": True,
    },
}
ACKNOWLEDGED = {"accepted": 1, "duplicates": 1}
OUTBOUND_MESSAGE = """\
<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <soapenv:Body>
  <notifications xmlns="http://soap.sforce.com/2005/09/outbound">
   <OrganizationId>00D5g000004SyncEAA</OrganizationId>
   <ActionId>04k5g000000bmsHAAQ</ActionId>
   <SessionId xsi:nil="true"/>
   <EnterpriseUrl>https://example.my.salesforce.com/services/Soap/c/62.0/00D5g000004Sync</EnterpriseUrl>
   <PartnerUrl>https://example.my.salesforce.com/services/Soap/u/62.0/00D5g000004Sync</PartnerUrl>
   <Notification>
    <Id>04l5g00000AbCdEAAV</Id>
    <sObject xsi:type="sf:Lead" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
     <sf:Id>00Q5g00000B3xYzEAJ</sf:Id>
     <sf:CreatedDate>2026-11-30T09:15:02.000Z</sf:CreatedDate>
     <sf:LastModifiedDate>2026-11-30T09:20:41.000Z</sf:LastModifiedDate>
     <sf:Email>ada@example.com</sf:Email>
     <sf:FirstName>Ada</sf:FirstName>
     <sf:LastName>Lovelace</sf:LastName>
     <sf:Company>Analytical Engines</sf:Company>
    </sObject>
   </Notification>
  </notifications>
 </soapenv:Body>
</soapenv:Envelope>
"""
ACK = ACK_RESPONSE.decode() if isinstance(ACK_RESPONSE, bytes) else ACK_RESPONSE

LIVE = {"status": "ok"}
READY = {"status": "ready", "migration": "0006"}
METRICS = """\
# HELP syncgate_deliveries_total Delivery attempts to a platform, by target and outcome
# TYPE syncgate_deliveries_total counter
syncgate_deliveries_total{outcome="done",target="salesforce"} 1280.0
syncgate_deliveries_total{outcome="dead",target="salesforce"} 1.0
# HELP syncgate_outbox_pending Deliveries waiting to be sent
# TYPE syncgate_outbox_pending gauge
syncgate_outbox_pending 0.0
"""
