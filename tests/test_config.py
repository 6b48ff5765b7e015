"""Settings: start-up refuses what production must not run with, in one line naming the variable."""

import logging

import pytest

from syncgate.config import Settings, SettingsError, insecure_settings, load_settings
from syncgate.main import create_app


def test_an_admin_token_shorter_than_32_characters_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SYNCGATE_ADMIN_TOKEN", "x" * 31)
    with pytest.raises(SettingsError) as refused:
        load_settings()
    assert str(refused.value) == (
        "invalid setting SYNCGATE_ADMIN_TOKEN: must be at least 32 characters long"
        " (e.g. the output of `openssl rand -base64 32`)"
    )
    monkeypatch.setenv("SYNCGATE_ADMIN_TOKEN", "x" * 32)
    assert load_settings().admin_token == "x" * 32


async def test_the_generated_admin_token_is_long_enough() -> None:
    app = create_app(Settings(database_url="sqlite://", _env_file=None), run_worker=False)
    async with app.router.lifespan_context(app):
        assert len(app.state.admin_token) >= 32


async def test_salesforce_intake_without_a_webhook_token_is_warned_about(
    caplog: pytest.LogCaptureFixture,
) -> None:
    open_intake = Settings(
        database_url="sqlite://", salesforce_org_id="00D5g000004SyncEAA", _env_file=None
    )
    (warning,) = insecure_settings(open_intake)
    assert "SYNCGATE_SALESFORCE_WEBHOOK_TOKEN is not set" in warning
    app = create_app(open_intake, run_worker=False)
    with caplog.at_level(logging.WARNING, logger="syncgate"):
        async with app.router.lifespan_context(app):
            pass
    assert warning in caplog.messages

    closed = open_intake.model_copy(update={"salesforce_webhook_token": "t"})
    assert insecure_settings(closed) == []
    assert insecure_settings(Settings(database_url="sqlite://", _env_file=None)) == []
