"""Config schema for tenants, budgets, rate limits, prices and the ledger."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from gateway.config.routing import TenantRoutingConfig
from providers.base import Duration

Name = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/@-]*$")]
Period = Literal["day", "month", "total"]
_BUDGET_TEXT = re.compile(r"^\s*\$?(\d+(?:\.\d+)?)\s*(?:/\s*(day|month|total))?\s*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def parse_budget(value: Any) -> Any:
    """`500/month`, `$20/day`, `1000` (total), or the mapping form."""
    if isinstance(value, str):
        match = _BUDGET_TEXT.match(value)
        if not match:
            raise ValueError(f"not a budget: {value!r} (use e.g. 500/month, 20/day, 1000/total)")
        return {"usd": match.group(1), "period": match.group(2) or "total"}
    if isinstance(value, int | float):
        return {"usd": value, "period": "total"}
    return value


class BudgetConfig(_Strict):
    usd: Annotated[float, Field(gt=0)]
    period: Period = "month"
    alert_at: tuple[Annotated[int, Field(gt=0, le=1000)], ...] = (50, 80, 100)
    """Percentages of the budget that emit one alert each per period (soft thresholds)."""


Budget = Annotated[BudgetConfig, BeforeValidator(parse_budget)]


def as_list(value: Any) -> Any:
    return [value] if value is not None and not isinstance(value, list | tuple) else value


Budgets = Annotated[tuple[Budget, ...], BeforeValidator(as_list)]


class RateLimitConfig(_Strict):
    rpm: int | None = Field(default=None, gt=0, description="Requests per minute.")
    tpm: int | None = Field(default=None, gt=0, description="Tokens (prompt + output estimate) per minute.")


class OutagePolicy(_Strict):
    """What admission does when Redis cannot be reached."""

    rate_limits: Literal["open", "closed"] = "open"
    budgets: Literal["open", "closed"] = "closed"


class TeamConfig(_Strict):
    budget: Budgets = ()
    rate_limit: RateLimitConfig | None = None


class TenantConfig(_Strict):
    budget: Budgets = ()
    rate_limit: RateLimitConfig | None = None
    model_limits: dict[Name, RateLimitConfig] = Field(default_factory=dict)
    """Per logical model, for this tenant."""
    teams: dict[Name, TeamConfig] = Field(default_factory=dict)
    on_store_outage: OutagePolicy = Field(default_factory=OutagePolicy)
    routing: TenantRoutingConfig = Field(default_factory=TenantRoutingConfig)
    log_prompts: bool = Field(default=False, description="Debugging: put prompts in the request log lines.")


def parse_day(value: Any) -> Any:
    if isinstance(value, str):
        return date.fromisoformat(value)
    return value


class PriceConfig(_Strict):
    """USD per million tokens (per image, per audio minute); a deployment's own price overrides the catalog."""

    input: Annotated[float, Field(ge=0)] = 0
    output: Annotated[float, Field(ge=0)] = 0
    cached_input: Annotated[float, Field(ge=0)] | None = None
    cache_write: Annotated[float, Field(ge=0)] | None = None
    reasoning: Annotated[float, Field(ge=0)] | None = None
    per_image: Annotated[float, Field(ge=0)] = 0
    per_audio_minute: Annotated[float, Field(ge=0)] = 0
    effective: Annotated[date, BeforeValidator(parse_day)] | None = None
    """From this UTC day on; earlier requests keep the previous entry's price."""

    def entry(self) -> dict[str, Any]:
        data = self.model_dump(exclude_none=True)
        if self.effective is not None:
            data["effective"] = self.effective.isoformat()
        return data


Prices = Annotated[tuple[PriceConfig, ...], BeforeValidator(as_list)]


class RetentionConfig(_Strict):
    hourly: Duration = Field(
        default=14 * 86400.0, description="How long hour buckets stay in Redis after their UTC hour ends."
    )
    daily: Duration = Field(
        default=400 * 86400.0, description="How long day buckets stay in Redis after their UTC day ends."
    )
    stream: Duration = Field(default=30 * 86400.0, description="Usage events kept in Redis once archived.")


class LedgerConfig(_Strict):
    archive: bool = Field(
        default=True,
        description="Drain usage events into the archive: daily JSON Lines files, or archive_postgres_dsn.",
    )
    archive_dir: str | None = Field(default=None, description="Default: <data_dir>/ledger.")
    archive_postgres_dsn: str | None = Field(
        default=None,
        repr=False,  # a secret: it holds the password
        description="postgresql://user:password@host:5432/database (the password from ${ENV}): archive usage "
        "events to PostgreSQL, idempotent on request id, instead of the JSON Lines files.",
    )
    retention: RetentionConfig = Field(default_factory=RetentionConfig)
    default_output_tokens: int = Field(
        default=1024, gt=0, description="Output tokens assumed for budget and tpm estimates without max_tokens."
    )
    key_cache_ttl: Duration = Field(default=5.0, description="How long a virtual key lookup is cached.")
    admission_leases: bool = Field(
        default=True,
        description="Admit a busy key's requests from short leases (at most 1% of a limit or budget, for a"
        " second) instead of one Redis call each; near a limit, every request is checked in Redis.",
    )
    alert_webhook: str | None = Field(default=None, description="POSTed a JSON body for each budget alert.")

    @model_validator(mode="after")
    def _webhook_is_http(self) -> LedgerConfig:
        if self.alert_webhook is not None and not self.alert_webhook.startswith(("http://", "https://")):
            raise ValueError("alert_webhook must be an http:// or https:// URL")
        return self

    @model_validator(mode="before")
    @classmethod
    def _empty_dsn_is_none(cls, data: Any) -> Any:
        """`${PG_DSN:-}` with the variable unset: no PostgreSQL, the files."""
        if isinstance(data, dict) and data.get("archive_postgres_dsn") == "":
            return {**data, "archive_postgres_dsn": None}
        return data

    @model_validator(mode="after")
    def _dsn_is_postgres(self) -> LedgerConfig:
        dsn = self.archive_postgres_dsn
        if dsn is not None and not dsn.startswith(("postgresql://", "postgres://")):
            # Never echo the value: it holds a password.
            raise ValueError("archive_postgres_dsn must be a postgresql:// URL")
        return self
