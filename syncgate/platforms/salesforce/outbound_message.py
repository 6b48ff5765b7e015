"""Salesforce Outbound Message (SOAP 1.1) parsing, acknowledgement and faults.

Pure Python: no web framework here. The endpoint reads the raw body, calls
:func:`parse_outbound_message`, checks :func:`organization_matches` and answers
either :data:`ACK_RESPONSE` or :func:`soap_fault`.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final
from xml.etree.ElementTree import Element, ParseError, TreeBuilder
from xml.sax.saxutils import escape

from defusedxml import DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden
from defusedxml.ElementTree import DefusedXMLParser

__all__ = [
    "ACK_RESPONSE",
    "ENTERPRISE_SOBJECT_NS",
    "MAX_NOTIFICATIONS",
    "OUTBOUND_NS",
    "SOAP_ENV_NS",
    "SUPPORTED_OBJECT_TYPES",
    "MalformedMessage",
    "Notification",
    "OutboundMessage",
    "organization_id_hint",
    "organization_matches",
    "parse_outbound_message",
    "soap_fault",
]

SOAP_ENV_NS: Final = "http://schemas.xmlsoap.org/soap/envelope/"
OUTBOUND_NS: Final = "http://soap.sforce.com/2005/09/outbound"
ENTERPRISE_SOBJECT_NS: Final = "urn:sobject.enterprise.soap.sforce.com"
XSI_NS: Final = "http://www.w3.org/2001/XMLSchema-instance"

MAX_NOTIFICATIONS: Final = 100
# The object types syncgate syncs; others are parsed so the caller can acknowledge and ignore them.
SUPPORTED_OBJECT_TYPES: Final = frozenset({"Lead", "Contact"})

_ENVELOPE_TAG: Final = f"{{{SOAP_ENV_NS}}}Envelope"
_BODY_TAG: Final = f"{{{SOAP_ENV_NS}}}Body"
_NOTIFICATIONS_TAG: Final = f"{{{OUTBOUND_NS}}}notifications"
_XSI_TYPE: Final = f"{{{XSI_NS}}}type"
_XSI_NIL: Final = f"{{{XSI_NS}}}nil"

# Salesforce ids: 15 case-sensitive characters, optionally followed by a 3-character checksum.
_SALESFORCE_ID = re.compile(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?")
_NCNAME = re.compile(r"[^\s:]+")
# The text of the first OrganizationId element, found without parsing (see organization_id_hint).
# Bounded repetitions: each start position costs a constant, so a scan is linear in the body.
_ORGANIZATION_ID_TEXT = re.compile(
    rb"<(?:[^\s<>/:]{1,64}:)?OrganizationId(?:\s[^<>]{0,512})?>\s{0,64}([A-Za-z0-9]{15,18})\s{0,64}<"
)
# Characters XML 1.0 cannot carry at all, even escaped.
_XML_INVALID_CHARS = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_SHORT_ORG_ID_LENGTH: Final = 15
# A real message nests 6 deep (Envelope/Body/notifications/Notification/sObject/field) and
# declares about one namespace per Notification; stop other documents early instead of
# building them.
_MAX_DEPTH: Final = 32
_MAX_NAMESPACE_DECLARATIONS: Final = 1000
_ENVELOPE_SINGLETONS: Final = (
    "OrganizationId",
    "ActionId",
    "SessionId",
    "EnterpriseUrl",
    "PartnerUrl",
)

ACK_RESPONSE: Final = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"'
    b' xmlns:xsd="http://www.w3.org/2001/XMLSchema"'
    b' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\n'
    b" <soapenv:Body>\n"
    b'  <notificationsResponse xmlns="http://soap.sforce.com/2005/09/outbound">\n'
    b"   <Ack>true</Ack>\n"
    b"  </notificationsResponse>\n"
    b" </soapenv:Body>\n"
    b"</soapenv:Envelope>"
)


class MalformedMessage(Exception):
    """The body is not a well-formed Salesforce Outbound Message."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Notification:
    """One `Notification` of an Outbound Message."""

    id: str
    object_type: str
    record_id: str
    fields: dict[str, str | None]


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """A parsed Outbound Message `notifications` call."""

    organization_id: str
    action_id: str | None
    session_id: str | None = field(repr=False)
    enterprise_url: str | None
    partner_url: str | None
    notifications: list[Notification]


def parse_outbound_message(body: bytes) -> OutboundMessage:
    """Parse a raw Outbound Message body, raising MalformedMessage on anything else."""
    root, sobject_types = _parse_xml(body)
    notifications_elem = _notifications_element(root)
    singles = _envelope_singletons(notifications_elem)

    organization_id = _require_id(singles.get("OrganizationId"), "OrganizationId")
    notification_elems = [
        child for child in notifications_elem if _local(child.tag) == "Notification"
    ]
    if not notification_elems:
        raise MalformedMessage("notifications contains no Notification")
    if len(notification_elems) > MAX_NOTIFICATIONS:
        raise MalformedMessage(
            f"notifications contains {len(notification_elems)} Notification elements,"
            f" at most {MAX_NOTIFICATIONS} are allowed"
        )

    return OutboundMessage(
        organization_id=organization_id,
        action_id=_optional_text(singles.get("ActionId"), "ActionId"),
        session_id=_optional_text(singles.get("SessionId"), "SessionId"),
        enterprise_url=_optional_text(singles.get("EnterpriseUrl"), "EnterpriseUrl"),
        partner_url=_optional_text(singles.get("PartnerUrl"), "PartnerUrl"),
        notifications=[
            _parse_notification(elem, position, sobject_types)
            for position, elem in enumerate(notification_elems, start=1)
        ],
    )


def organization_id_hint(body: bytes) -> str | None:
    """The OrganizationId a raw message claims, read with one regular-expression scan.

    A cheap check before the parse, so that a message for another org costs no parsing: it is
    not authoritative (a comment could hold the first match), the parsed message is.
    """
    match = _ORGANIZATION_ID_TEXT.search(body)
    if match is None:
        return None
    value = match.group(1).decode("ascii")
    return value if _SALESFORCE_ID.fullmatch(value) else None


def organization_matches(received: str, ours: str) -> bool:
    """Whether two org ids name the same org (first 15 characters, case-sensitive)."""
    if len(received) < _SHORT_ORG_ID_LENGTH or len(ours) < _SHORT_ORG_ID_LENGTH:
        return False
    # Bytes, because compare_digest refuses non-ASCII str.
    return hmac.compare_digest(
        received[:_SHORT_ORG_ID_LENGTH].encode(), ours[:_SHORT_ORG_ID_LENGTH].encode()
    )


def soap_fault(message: str, *, client_fault: bool = True) -> bytes:
    """Build a SOAP 1.1 Fault envelope carrying `message` as its faultstring."""
    code = "soapenv:Client" if client_fault else "soapenv:Server"
    text = escape(_XML_INVALID_CHARS.sub("\ufffd", message))
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<soapenv:Envelope xmlns:soapenv="{SOAP_ENV_NS}">\n'
        " <soapenv:Body>\n"
        "  <soapenv:Fault>\n"
        f"   <faultcode>{code}</faultcode>\n"
        f"   <faultstring>{text}</faultstring>\n"
        "   <detail/>\n"
        "  </soapenv:Fault>\n"
        " </soapenv:Body>\n"
        "</soapenv:Envelope>"
    ).encode()


class _Builder:
    """TreeBuilder target that resolves each sObject's xsi:type while its namespaces are in scope.

    ElementTree drops namespace declarations, so `xsi:type="sf:Contact"` can only be resolved
    during parsing. The bindings are a stack per prefix, pushed and popped as expat reports
    declarations coming into and going out of scope, so each element costs the same however
    many namespaces are in scope (a copy of the scope per element made hostile messages
    quadratic).
    """

    def __init__(self) -> None:
        self._tree = TreeBuilder()
        self._bindings: dict[str, list[str]] = {}
        self._declarations = 0
        self._depth = 0
        self.sobject_types: dict[Element, tuple[str | None, str] | str] = {}

    def start_ns(self, prefix: str, uri: str) -> None:
        self._declarations += 1
        if self._declarations > _MAX_NAMESPACE_DECLARATIONS:
            raise MalformedMessage(
                f"more than {_MAX_NAMESPACE_DECLARATIONS} namespace declarations"
            )
        self._bindings.setdefault(prefix, []).append(uri)

    def end_ns(self, prefix: str) -> None:
        uris = self._bindings[prefix]
        uris.pop()
        if not uris:
            del self._bindings[prefix]

    def start(self, tag: str, attrs: dict[str, str]) -> Element:
        self._depth += 1
        if self._depth > _MAX_DEPTH:
            raise MalformedMessage(f"elements are nested deeper than {_MAX_DEPTH} levels")
        elem = self._tree.start(tag, attrs)
        if _local(tag) == "sObject":
            self.sobject_types[elem] = _resolve_qname(attrs.get(_XSI_TYPE), self._namespace_of)
        return elem

    def end(self, tag: str) -> Element:
        self._depth -= 1
        return self._tree.end(tag)

    def data(self, data: str) -> None:
        self._tree.data(data)

    def close(self) -> Element:
        return self._tree.close()

    def _namespace_of(self, prefix: str) -> str | None:
        uris = self._bindings.get(prefix)
        return uris[-1] if uris else None


def _parse_xml(body: bytes) -> tuple[Element, dict[Element, tuple[str | None, str] | str]]:
    builder = _Builder()
    parser = DefusedXMLParser(
        target=builder, forbid_dtd=True, forbid_entities=True, forbid_external=True
    )
    try:
        # One feed: chunked feeding makes expat < 2.6 re-scan long tokens quadratically.
        parser.feed(body)
        root = parser.close()
    except DTDForbidden:
        raise MalformedMessage("DTDs are not allowed") from None
    except EntitiesForbidden:
        raise MalformedMessage("entity declarations are not allowed") from None
    except ExternalReferenceForbidden:
        raise MalformedMessage("external references are not allowed") from None
    except ParseError as exc:
        raise MalformedMessage(f"not well-formed XML: {exc}") from None
    except (ValueError, LookupError) as exc:
        # Encoding problems surface as UnicodeError (a ValueError) or LookupError.
        raise MalformedMessage(f"unreadable XML: {type(exc).__name__}") from None
    if not isinstance(root, Element):
        raise MalformedMessage("no XML document")
    return root, builder.sobject_types


def _notifications_element(root: Element) -> Element:
    if root.tag != _ENVELOPE_TAG:
        if _local(root.tag) == "Envelope":
            raise MalformedMessage(
                f"Envelope namespace is {_show(_namespace(root.tag))},"
                f" expected SOAP 1.1 {SOAP_ENV_NS}"
            )
        raise MalformedMessage(f"root element is {_show(root.tag)}, expected a SOAP 1.1 Envelope")
    bodies = [child for child in root if child.tag == _BODY_TAG]
    if len(bodies) != 1:
        raise MalformedMessage(f"Envelope has {len(bodies)} soapenv:Body elements, expected 1")
    candidates = [child for child in bodies[0] if _local(child.tag) == "notifications"]
    if not candidates:
        raise MalformedMessage("soapenv:Body does not contain a notifications element")
    if len(candidates) > 1:
        raise MalformedMessage("soapenv:Body contains more than one notifications element")
    (notifications_elem,) = candidates
    if notifications_elem.tag != _NOTIFICATIONS_TAG:
        raise MalformedMessage(
            f"notifications namespace is {_show(_namespace(notifications_elem.tag))},"
            f" expected {OUTBOUND_NS}"
        )
    return notifications_elem


def _envelope_singletons(notifications_elem: Element) -> dict[str, Element]:
    singles: dict[str, Element] = {}
    for child in notifications_elem:
        name = _local(child.tag)
        if name in _ENVELOPE_SINGLETONS:
            if name in singles:
                raise MalformedMessage(f"notifications contains more than one {name}")
            singles[name] = child
    return singles


def _parse_notification(
    elem: Element, position: int, sobject_types: dict[Element, tuple[str | None, str] | str]
) -> Notification:
    where = f"Notification #{position}"
    ids = [child for child in elem if _local(child.tag) == "Id"]
    sobjects = [child for child in elem if _local(child.tag) == "sObject"]
    if len(ids) > 1 or len(sobjects) > 1:
        raise MalformedMessage(f"{where} has more than one Id or sObject")
    notification_id = _require_id(ids[0] if ids else None, f"{where} Id")
    if not sobjects:
        raise MalformedMessage(f"{where} has no sObject")
    sobject = sobjects[0]

    resolved = sobject_types[sobject]
    if isinstance(resolved, str):
        raise MalformedMessage(f"{where} sObject: {resolved}")
    type_ns, object_type = resolved
    if type_ns is not None and type_ns != ENTERPRISE_SOBJECT_NS:
        raise MalformedMessage(
            f"{where} sObject xsi:type namespace is {_show(type_ns)},"
            f" expected {ENTERPRISE_SOBJECT_NS}"
        )

    fields: dict[str, str | None] = {}
    for child in sobject:
        name = _local(child.tag)
        if name in fields:
            raise MalformedMessage(f"{where} sObject has field {_show(name)} more than once")
        fields[name] = _field_value(child, f"{where} field {_show(name)}")
    record_id = fields.get("Id")
    if record_id is None:
        raise MalformedMessage(f"{where} sObject has no Id")
    if not _SALESFORCE_ID.fullmatch(record_id):
        raise MalformedMessage(f"{where} sObject Id is not a Salesforce id")
    return Notification(
        id=notification_id, object_type=object_type, record_id=record_id, fields=fields
    )


def _resolve_qname(
    value: str | None, namespace_of: Callable[[str], str | None]
) -> tuple[str | None, str] | str:
    """Resolve an xsi:type QName to (namespace, local name), or return why it cannot be."""
    if value is None:
        return "missing xsi:type"
    prefix, sep, local = value.strip().rpartition(":")
    if not _NCNAME.fullmatch(local) or (sep and not _NCNAME.fullmatch(prefix)):
        return f"xsi:type {_show(value)} is not a QName"
    if not sep:
        # Unprefixed types are taken by local name: the default namespace in scope is the
        # outbound one, which no sObject type lives in.
        return (None, local)
    namespace = namespace_of(prefix)
    if namespace is None:
        return f"xsi:type prefix {_show(prefix)} is not bound to a namespace"
    return (namespace, local)


def _field_value(elem: Element, what: str) -> str | None:
    if len(elem):
        raise MalformedMessage(f"{what} has child elements; only simple values are supported")
    if elem.get(_XSI_NIL, "").strip() in ("true", "1"):
        return None
    return elem.text or ""


def _optional_text(elem: Element | None, what: str) -> str | None:
    if elem is None:
        return None
    value = _field_value(elem, what)
    if value is None:
        return None
    return value.strip() or None


def _require_id(elem: Element | None, what: str) -> str:
    value = _optional_text(elem, what)
    if value is None:
        raise MalformedMessage(f"{what} is missing")
    if not _SALESFORCE_ID.fullmatch(value):
        raise MalformedMessage(f"{what} is not a 15 or 18 character Salesforce id")
    return value


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _namespace(tag: str) -> str:
    return tag[1:].partition("}")[0] if tag.startswith("{") else ""


def _show(value: str, limit: int = 80) -> str:
    """Quote (and shorten) a value taken from the message for use in a reason."""
    return repr(value if len(value) <= limit else value[:limit] + "…")
