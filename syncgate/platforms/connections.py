"""Whether this deployment can call each platform's API: one rule for the clients, the jobs
API, sync-status, the deliveries that wait and the start-up warning."""

import logging

from syncgate.config import Settings

log = logging.getLogger("syncgate")

HUBSPOT = "hubspot"
SALESFORCE = "salesforce"
PLATFORM_NAMES = {HUBSPOT: "HubSpot", SALESFORCE: "Salesforce"}
_HOW_TO_CONNECT = {
    HUBSPOT: "set SYNCGATE_HUBSPOT_ACCESS_TOKEN, or SYNCGATE_HUBSPOT_CLIENT_ID,"
    " SYNCGATE_HUBSPOT_CLIENT_SECRET and SYNCGATE_HUBSPOT_REFRESH_TOKEN",
    SALESFORCE: "set SYNCGATE_SALESFORCE_CLIENT_ID with SYNCGATE_SALESFORCE_CLIENT_SECRET"
    " (or SYNCGATE_SALESFORCE_REFRESH_TOKEN)",
}


def hubspot_configured(settings: Settings) -> bool:
    """A static token, or everything the OAuth refresh-token flow needs."""
    oauth = settings.hubspot_client_id and settings.hubspot_client_secret
    return bool(settings.hubspot_access_token or (oauth and settings.hubspot_refresh_token))


def salesforce_configured(settings: Settings) -> bool:
    """A client id, with a secret or a refresh token (only that grant may omit the secret)."""
    secret_or_refresh = settings.salesforce_client_secret or settings.salesforce_refresh_token
    return bool(settings.salesforce_client_id and secret_or_refresh)


def is_connected(settings: Settings, platform: str) -> bool:
    return hubspot_configured(settings) if platform == HUBSPOT else salesforce_configured(settings)


def not_connected(platform: str) -> str:
    """The `last_error` of a delivery that waits for the platform's credentials."""
    return f"{PLATFORM_NAMES[platform]} is not connected"


def how_to_connect(platform: str) -> str:
    return _HOW_TO_CONNECT[platform]


def warn_unconnected(settings: Settings) -> None:
    """One warning per platform whose API credentials are missing (at start-up)."""
    for platform in (HUBSPOT, SALESFORCE):
        if not is_connected(settings, platform):
            log.warning(
                "%s: %s. Changes for %s are kept as pending deliveries until then.",
                not_connected(platform),
                how_to_connect(platform),
                PLATFORM_NAMES[platform],
            )
