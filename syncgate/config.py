"""Service configuration: one typed settings class read from SYNCGATE_* variables and .env."""

from functools import lru_cache
from typing import Annotated, Literal

from pydantic import AnyHttpUrl, Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Anything shorter can be guessed or is a placeholder ("changeme", "admin"); the generated one
# has 43 characters.
MIN_ADMIN_TOKEN_LENGTH = 32


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SYNCGATE_", env_file=".env", extra="ignore", frozen=True
    )

    database_url: str = "sqlite:///./syncgate.db"
    admin_token: str | None = None
    public_url: AnyHttpUrl | None = None

    hubspot_client_secret: str | None = None
    hubspot_app_id: int | None = None
    hubspot_portal_id: int | None = None
    hubspot_access_token: str | None = None
    hubspot_client_id: str | None = None
    hubspot_refresh_token: str | None = None
    hubspot_api_base: AnyHttpUrl = AnyHttpUrl("https://api.hubapi.com")

    salesforce_org_id: str | None = None
    salesforce_webhook_token: str | None = None
    salesforce_login_url: AnyHttpUrl = AnyHttpUrl("https://login.salesforce.com")
    salesforce_client_id: str | None = None
    salesforce_client_secret: str | None = None
    salesforce_refresh_token: str | None = None
    salesforce_api_version: str = Field(default="62.0", pattern=r"^\d+\.\d$")

    worker_poll_seconds: Annotated[float, Field(gt=0)] = 0.5
    retry_base_seconds: Annotated[float, Field(gt=0)] = 2
    retry_max_seconds: Annotated[float, Field(gt=0)] = 3600
    # An upper bound only: with the default backoff, the retry window ends a delivery first.
    max_attempts: Annotated[int, Field(ge=1)] = 100
    max_body_bytes: Annotated[int, Field(ge=1024)] = 1_048_576

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    max_api_body_bytes: Annotated[int, Field(ge=1024)] = 524_288
    # Failed authentications a minute, per client address and for all addresses together.
    auth_failures_per_address: Annotated[int, Field(ge=1)] = 10
    auth_failures_global: Annotated[int, Field(ge=1)] = 100
    # Real CRM webhooks always carry v3; v1/v2 stay accepted by default as the contract says.
    hubspot_require_v3: bool = False

    @field_validator("log_level", mode="before")
    @classmethod
    def _level_in_any_case(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: str) -> str:
        from syncgate.db import check_database_url

        check_database_url(value)
        return value

    retry_window_seconds: Annotated[float, Field(gt=0)] = 86_400
    breaker_failures: Annotated[int, Field(ge=1)] = 5
    breaker_probe_seconds: Annotated[float, Field(gt=0)] = 10
    breaker_probe_max_seconds: Annotated[float, Field(gt=0)] = 300
    api_share_for_jobs: Annotated[int, Field(ge=1, le=100)] = 75
    api_share_for_deliveries: Annotated[int, Field(ge=1, le=100)] = 95
    hubspot_requests_per_10_seconds: Annotated[int, Field(ge=1)] = 100

    @field_validator(
        "admin_token",
        "hubspot_client_secret",
        "hubspot_access_token",
        "hubspot_client_id",
        "hubspot_refresh_token",
        "salesforce_org_id",
        "salesforce_webhook_token",
        "salesforce_client_id",
        "salesforce_client_secret",
        "salesforce_refresh_token",
        "public_url",
        "hubspot_app_id",
        "hubspot_portal_id",
        mode="before",
    )
    @classmethod
    def _blank_means_unset(cls, value: object) -> object:
        # An empty variable must never act as a secret (an empty HMAC key "verifies" anything).
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("admin_token")
    @classmethod
    def _admin_token_length(cls, value: str | None) -> str | None:
        if value is not None and len(value) < MIN_ADMIN_TOKEN_LENGTH:
            raise ValueError(
                f"must be at least {MIN_ADMIN_TOKEN_LENGTH} characters long"
                " (e.g. the output of `openssl rand -base64 32`)"
            )
        return value

    @field_validator("salesforce_org_id")
    @classmethod
    def _org_id_shape(cls, value: str | None) -> str | None:
        if value is not None and (len(value) not in (15, 18) or not value.isalnum()):
            raise ValueError("must be a 15- or 18-character Salesforce org id")
        return value

    @field_validator("api_share_for_deliveries")
    @classmethod
    def _deliveries_outlast_jobs(cls, value: int, info: ValidationInfo) -> int:
        jobs = info.data.get("api_share_for_jobs")
        if jobs is not None and value < jobs:
            raise ValueError(f"must be at least SYNCGATE_API_SHARE_FOR_JOBS ({jobs})")
        return value


def insecure_settings(settings: Settings) -> list[str]:
    """Settings a production deployment must not run with, as lines to log at start-up."""
    warnings = []
    if settings.salesforce_org_id is not None and settings.salesforce_webhook_token is None:
        warnings.append(
            "SYNCGATE_SALESFORCE_WEBHOOK_TOKEN is not set: anyone who knows the Salesforce org id"
            " can post Outbound Messages that change HubSpot contacts. Set it, and call"
            " /webhooks/salesforce?token=<value> from Salesforce; production requires it."
        )
    return warnings


class SettingsError(Exception):
    """A configuration value is missing or malformed; the message names the variable."""


def load_settings() -> Settings:
    """Read the settings, turning a validation error into one line naming the variable."""
    try:
        return Settings()
    except ValidationError as error:
        first = error.errors()[0]
        name = "SYNCGATE_" + str(first["loc"][0]).upper() if first["loc"] else "SYNCGATE_*"
        message = first["msg"].removeprefix("Value error, ")
        raise SettingsError(f"invalid setting {name}: {message}") from None


@lru_cache
def get_settings() -> Settings:
    return load_settings()
