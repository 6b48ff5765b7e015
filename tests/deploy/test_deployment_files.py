"""docker-compose.yml, the Dockerfile and .env.example say what the README promises. No compose
v2 plugin can be installed here (no registry ships it), so the compose file is checked by
reading it: its shape, and every command and setting against the real CLI and Settings."""

from pathlib import Path
from typing import Any

import pytest
import yaml
from dotenv import dotenv_values

from syncgate.cli import build_parser
from syncgate.config import Settings

ROOT = Path(__file__).resolve().parents[2]
SYNCGATE_SERVICES = ("migrate", "app", "worker")


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert set(compose["services"]) == {"postgres", *SYNCGATE_SERVICES}
    return dict(compose["services"])


def test_one_image_built_once_and_run_by_every_syncgate_service(
    services: dict[str, Any],
) -> None:
    built = [name for name, service in services.items() if "build" in service]
    assert built == ["migrate"]
    assert {services[name]["image"] for name in SYNCGATE_SERVICES} == {"syncgate:local"}


def test_migrations_run_once_before_the_app_and_the_worker(services: dict[str, Any]) -> None:
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for name in ("app", "worker"):
        assert services[name]["depends_on"] == {
            "migrate": {"condition": "service_completed_successfully"}
        }
    assert build_parser().parse_args(services["migrate"]["command"][1:]).command == "migrate"


def test_restart_policies(services: dict[str, Any]) -> None:
    assert services["migrate"]["restart"] == "on-failure"  # one-shot: done once it succeeds
    for name in ("postgres", "app", "worker"):
        assert services[name]["restart"] == "unless-stopped"


def test_commands_are_valid_and_the_worker_can_be_watched(services: dict[str, Any]) -> None:
    app = build_parser().parse_args(services["app"]["command"][1:])
    assert (app.command, app.host, app.port, app.no_worker) == ("serve", "0.0.0.0", 8000, True)
    worker = build_parser().parse_args(services["worker"]["command"][1:])
    assert (worker.command, worker.metrics_host, worker.metrics_port) == ("worker", "0.0.0.0", 8000)
    # The image's HEALTHCHECK polls /livez on 8000, which both processes answer.
    assert "http://127.0.0.1:8000/livez" in (ROOT / "Dockerfile").read_text()


def test_one_admin_token_and_database_for_every_process(services: dict[str, Any]) -> None:
    for name in SYNCGATE_SERVICES:
        assert services[name]["env_file"] == ".env"
        url = services[name]["environment"]["SYNCGATE_DATABASE_URL"]
        assert url.startswith("postgresql://") and "@postgres/" in url
        Settings(_env_file=None, database_url=url)
    example = dotenv_values(ROOT / ".env.example")
    assert example["SYNCGATE_ADMIN_TOKEN"]
    fields = {f"SYNCGATE_{name.upper()}" for name in Settings.model_fields}
    assert set(example) <= fields, set(example) - fields
    Settings(_env_file=ROOT / ".env.example")


def test_the_image_is_built_from_wheels_on_any_base_and_runs_as_non_root() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "ARG BASE_IMAGE=python:3.11-slim" in dockerfile
    assert "--no-index --find-links /dist syncgate" in dockerfile
    assert "HEALTHCHECK" in dockerfile
    user = [line.split()[1] for line in dockerfile.splitlines() if line.startswith("USER ")]
    assert user == ["syncgate"]
