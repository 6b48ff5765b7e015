"""Fixtures of the end-to-end tests: service processes against the fake platforms of
support/platforms.py."""

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support.service import Service


@pytest.fixture
def service_env(database_url: str, platform_env: dict[str, str]) -> dict[str, str]:
    return {**platform_env, "SYNCGATE_DATABASE_URL": database_url}


@pytest.fixture
def make_service(
    service_env: dict[str, str], tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[..., Service]]:
    services: list[Service] = []

    def make(**env: str) -> Service:
        service = Service({**service_env, **env}, tmp_path)
        services.append(service)
        return service

    yield make
    for service in services:
        service.stop()
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        for service in services:
            print(service.logs()[-20000:])


@pytest.fixture
def service(make_service: Callable[..., Service]) -> Service:
    return make_service().start()
