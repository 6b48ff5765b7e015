"""Prometheus metrics named by the contract (§7)."""

from prometheus_client import Counter, Gauge, Histogram

PLATFORMS = ("hubspot", "salesforce")
WEBHOOK_OUTCOMES = ("accepted", "duplicate", "rejected")
DIRECTIONS = ("hubspot_to_salesforce", "salesforce_to_hubspot")
DECISION_NAMES = (
    "forwarded",
    "created_outside_segment",
    "skipped_not_in_segment",
    "skipped_no_change",
    "skipped_stale",
    "skipped_unmapped",
    "ignored",
)
DELIVERY_OUTCOMES = ("done", "retry", "dead")

WEBHOOK_EVENTS = Counter(
    "syncgate_webhook_events",
    "Webhook events received, by source platform and outcome",
    ["source", "outcome"],
)
DECISIONS = Counter(
    "syncgate_decisions",
    "Gate decisions, by direction and decision",
    ["direction", "decision"],
)
DELIVERIES = Counter(
    "syncgate_deliveries",
    "Delivery attempts to a platform, by target and outcome",
    ["target", "outcome"],
)
OUTBOX_PENDING = Gauge("syncgate_outbox_pending", "Deliveries waiting to be sent")
# Read from the database at scrape time, so every replica reports every worker's state.
DELIVERIES_WAITING = Gauge(
    "syncgate_deliveries_waiting", "Deliveries pending or in flight, by target", ["target"]
)
PLATFORM_UP = Gauge(
    "syncgate_platform_up",
    "1 while calls to the platform go out, 0 while its circuit breaker is open",
    ["platform"],
)
PLATFORM_UNAVAILABLE_SECONDS = Gauge(
    "syncgate_platform_unavailable_seconds",
    "Seconds since the platform's circuit breaker opened (0 while it is available)",
    ["platform"],
)
PLATFORM_API_USED = Gauge(
    "syncgate_platform_api_requests_used",
    "Daily API requests used, as the platform last reported it",
    ["platform"],
)
PLATFORM_API_ALLOWED = Gauge(
    "syncgate_platform_api_requests_allowed",
    "Daily API requests allowed, as the platform last reported it",
    ["platform"],
)
FORWARD_LATENCY = Histogram(
    "syncgate_forward_latency_seconds",
    "Time from webhook received to the change delivered to the other platform",
    buckets=(0.05, 0.1, 0.25, 0.5, 0.75, 1, 2, 5, 10, 30, 60, 300, 1800),
)

CLIENT_DISCONNECTS = Counter(
    "syncgate_client_disconnects",
    "Requests whose client went away before sending the whole body",
)
REFUSED_STATUSES = ("401", "403", "413", "429")
REFUSED_REQUESTS = Counter(
    "syncgate_requests_refused",
    "Requests refused as unauthenticated, forbidden, too large or throttled, by status",
    ["status"],
)


def _create_known_series() -> None:
    # A labelled counter has no sample until its first use; creating the known series up front
    # lets dashboards and alerts see zeros instead of a missing metric.
    for platform in PLATFORMS:
        for outcome in WEBHOOK_OUTCOMES:
            WEBHOOK_EVENTS.labels(source=platform, outcome=outcome)
        for outcome in DELIVERY_OUTCOMES:
            DELIVERIES.labels(target=platform, outcome=outcome)
    for direction in DIRECTIONS:
        for decision in DECISION_NAMES:
            DECISIONS.labels(direction=direction, decision=decision)
    for status in REFUSED_STATUSES:
        REFUSED_REQUESTS.labels(status=status)


_create_known_series()
