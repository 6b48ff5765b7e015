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
# What follows the name in an OrganizationId start tag, up to its text (bounded repetitions:
# the match costs a constant).
_ORGANIZATION_ID_TAG_REST = re.compile(
    rb"(?:\s[^<>]{0,512})?>\s{0,64}([A-Za-z0-9]{15,18})\s{0,64}<"
)
# Characters XML 1.0 cannot carry at all, even escaped.
_XML_INVALID_CHARS = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_SHORT_ORG_ID_LENGTH: Final = 15
# A real message nests 6 deep (Envelope/Body/notifications/Notification/sObject/field) and
# declares about one namespace per Notification; stop other documents early instead of
# building them.
_MAX_DEPTH: Final = 32
_MAX_NAMESPACE_DECLARATIONS: Final = 1000
# 100 Notifications of 200 fields: as much as a megabyte of real fields holds.
_MAX_FIELDS: Final = 20_000
# Elements a message is not read from (a header, elements of later API versions) are passed
# over, but not without end: then a megabyte of them costs what a real message costs.
_MAX_PASSED_OVER: Final = 10_000
_FEED_BYTES: Final = 16_384
# Real tags are under a hundred bytes; a long text value is not a token.
_MAX_TOKEN_BYTES: Final = 65_536
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
    """The OrganizationId a raw message claims, found without parsing it.

    A cheap check before the parse, so that a message for another org costs no parsing. Only
    the first occurrence of the name counts (in a real message it is the start tag): the cost is
    one substring search. Not authoritative (a comment could hold it); the parsed message is.
    """
    name = b"OrganizationId"
    index = body.find(name)
    if index < 1 or body[index - 1] not in b"<:":
        return None
    match = _ORGANIZATION_ID_TAG_REST.match(body, index + len(name))
    return match.group(1).decode("ascii") if match else None


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


# What an element is to the parse (None: not built).
_ENVELOPE: Final = "envelope"
_BODY: Final = "body"
_NOTIFICATIONS: Final = "notifications"
_NOTIFICATION: Final = "notification"
_SOBJECT: Final = "sobject"
_VALUE: Final = "value"  # an element read for its text: a singleton, a Notification Id, a field
_VALUE_CHILD: Final = "value child"  # kept only to say that a value has child elements


class _Builder:
    """TreeBuilder target that builds only the elements a message is read from.

    Elements anywhere else (unknown ones, and what is inside a value) are passed over, not
    built, and every count a message may not exceed is checked as its elements arrive, so
    parsing a hostile message costs about what parsing a real one does.

    It also resolves each sObject's xsi:type while its namespaces are in scope (ElementTree drops
    namespace declarations). The bindings are a stack per prefix, pushed and popped as expat
    reports declarations coming into and going out of scope, so each element costs the same
    however many namespaces are in scope (a copy of the scope per element made hostile messages
    quadratic).
    """

    def __init__(self) -> None:
        self._tree = TreeBuilder()
        self._bindings: dict[str, list[str]] = {}
        self._declarations = 0
        self._open: list[str | None] = []
        self._seen: set[str] = set()  # singleton elements met so far
        self._notifications = 0
        self._notification_parts: set[str] = set()
        self._fields = 0
        self._passed_over = 0
        self._value_has_child = False
        self.events = 0  # callbacks so far: expat has made progress when it grows
        self.sobject_types: dict[Element, tuple[str | None, str] | str] = {}

    def start_ns(self, prefix: str, uri: str) -> None:
        self.events += 1
        self._declarations += 1
        if self._declarations > _MAX_NAMESPACE_DECLARATIONS:
            raise MalformedMessage(
                f"more than {_MAX_NAMESPACE_DECLARATIONS} namespace declarations"
            )
        self._bindings.setdefault(prefix, []).append(uri)

    def end_ns(self, prefix: str) -> None:
        self.events += 1
        uris = self._bindings[prefix]
        uris.pop()
        if not uris:
            del self._bindings[prefix]

    def start(self, tag: str, attrs: dict[str, str]) -> Element | None:
        self.events += 1
        if len(self._open) >= _MAX_DEPTH:
            raise MalformedMessage(f"elements are nested deeper than {_MAX_DEPTH} levels")
        kind = self._kind(self._open[-1] if self._open else None, tag)
        self._open.append(kind)
        if kind is None:
            self._passed_over += 1
            if self._passed_over > _MAX_PASSED_OVER:
                raise MalformedMessage(
                    f"more than {_MAX_PASSED_OVER} elements that are not part of an"
                    " Outbound Message"
                )
            return None
        elem = self._tree.start(tag, attrs)
        if kind == _SOBJECT:
            self.sobject_types[elem] = _resolve_qname(attrs.get(_XSI_TYPE), self._namespace_of)
        return elem

    def end(self, tag: str) -> Element | None:
        self.events += 1
        if self._open.pop() is None:
            return None
        return self._tree.end(tag)

    def data(self, data: str) -> None:
        self.events += 1
        # Only values are read for their text.
        if self._open and self._open[-1] == _VALUE:
            self._tree.data(data)

    def comment(self, text: str) -> None:
        self.events += 1

    def pi(self, target: str, text: str) -> None:
        self.events += 1

    def close(self) -> Element:
        return self._tree.close()

    def _kind(self, parent: str | None, tag: str) -> str | None:
        """What a new element is, given its parent's kind; None when it is not built."""
        if not self._open:
            return _ENVELOPE
        name = _local(tag)
        if parent == _ENVELOPE and tag == _BODY_TAG:
            self._once("Body", "Envelope has more than one soapenv:Body element")
            return _BODY
        if parent == _BODY and name == "notifications":
            self._once(name, "soapenv:Body contains more than one notifications element")
            return _NOTIFICATIONS
        if parent == _NOTIFICATIONS and name in _ENVELOPE_SINGLETONS:
            self._once(name, f"notifications contains more than one {name}")
            return self._value()
        if parent == _NOTIFICATIONS and name == "Notification":
            self._notifications += 1
            if self._notifications > MAX_NOTIFICATIONS:
                raise MalformedMessage(
                    f"notifications contains more than {MAX_NOTIFICATIONS} Notification elements"
                )
            self._notification_parts = set()
            return _NOTIFICATION
        if parent == _NOTIFICATION and name in ("Id", "sObject"):
            if name in self._notification_parts:
                raise MalformedMessage(
                    f"Notification #{self._notifications} has more than one Id or sObject"
                )
            self._notification_parts.add(name)
            return _SOBJECT if name == "sObject" else self._value()
        if parent == _SOBJECT:
            self._fields += 1
            if self._fields > _MAX_FIELDS:
                raise MalformedMessage(f"the sObjects have more than {_MAX_FIELDS} fields")
            return self._value()
        if parent == _VALUE and not self._value_has_child:
            self._value_has_child = True
            return _VALUE_CHILD
        return None

    def _value(self) -> str:
        self._value_has_child = False
        return _VALUE

    def _once(self, name: str, reason: str) -> None:
        if name in self._seen:
            raise MalformedMessage(reason)
        self._seen.add(name)

    def _namespace_of(self, prefix: str) -> str | None:
        uris = self._bindings.get(prefix)
        return uris[-1] if uris else None


def _parse_xml(body: bytes) -> tuple[Element, dict[Element, tuple[str | None, str] | str]]:
    builder = _Builder()
    parser = DefusedXMLParser(
        target=builder, forbid_dtd=True, forbid_entities=True, forbid_external=True
    )
    try:
        _feed(parser, builder, body)
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


def _feed(parser: DefusedXMLParser, builder: _Builder, body: bytes) -> None:
    """Feed the body a slice at a time, refusing a token longer than _MAX_TOKEN_BYTES.

    Expat handles a token (a start tag with its attributes, a comment) in one call that holds
    the GIL: a megabyte-long one would stall the event loop, and expat < 2.6 scans a token
    again with every slice that does not complete it. Text is reported as it arrives, so only
    such tokens leave a slice without any event.
    """
    slices_without_event = 0
    for start in range(0, len(body), _FEED_BYTES):
        events = builder.events
        parser.feed(body[start : start + _FEED_BYTES])
        slices_without_event = slices_without_event + 1 if builder.events == events else 0
        if slices_without_event * _FEED_BYTES > _MAX_TOKEN_BYTES:
            raise MalformedMessage(f"a tag or comment is longer than {_MAX_TOKEN_BYTES} bytes")


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
    return {
        _local(child.tag): child
        for child in notifications_elem
        if _local(child.tag) in _ENVELOPE_SINGLETONS
    }


def _parse_notification(
    elem: Element, position: int, sobject_types: dict[Element, tuple[str | None, str] | str]
) -> Notification:
    where = f"Notification #{position}"
    ids = [child for child in elem if _local(child.tag) == "Id"]
    sobjects = [child for child in elem if _local(child.tag) == "sObject"]
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
