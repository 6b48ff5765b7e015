"""Whether this deployment can call each platform's API (the clients' own rule), and how a
missing connection is named: for the jobs API, sync-status, waiting deliveries and start-up."""

import logging

from syncgate.config import Settings
from syncgate.platforms.hubspot.client import HubSpotClient
from syncgate.platforms.salesforce.client import SalesforceClient

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


def is_connected(settings: Settings, platform: str) -> bool:
    client = HubSpotClient if platform == HUBSPOT else SalesforceClient
    return client.is_configured(settings)


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
