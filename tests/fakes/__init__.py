"""Fake HubSpot and Salesforce HTTP servers for end-to-end tests (see server.py to run them)."""

from .hubspot import FakeHubSpot, create_hubspot_app
from .salesforce import FakeSalesforce, create_salesforce_app
from .server import FakeServer, running

__all__ = [
    "FakeHubSpot",
    "FakeSalesforce",
    "FakeServer",
    "create_hubspot_app",
    "create_salesforce_app",
    "running",
]
