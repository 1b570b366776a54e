"""The one settings object: CITYLOOP_* environment variables and KAFKA_BOOTSTRAP_SERVERS."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CITYLOOP_", env_file=".env", extra="ignore")

    kafka_bootstrap_servers: str | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "CITYLOOP_KAFKA_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVERS"
        ),
        description="an external Kafka; unset means the embedded broker",
    )
    broker_host: str = Field(default="127.0.0.1", description="embedded broker address")
    broker_port: int = Field(default=9092, description="embedded broker port")
    topic_prefix: str = Field(default="cityloop", pattern=r"^[a-zA-Z0-9._-]+$")
    topic_partitions: int = Field(default=4, ge=1)
    replication_factor: int = Field(default=1, ge=1)
    kafka_session_timeout_s: float = Field(
        default=6.0, description="short: the embedded broker holds each group join for half of it"
    )

    clock: Literal["wall", "external"] = Field(
        default="wall",
        description="wall: the worker ticks deadlines itself; external: only ticks published "
        "on the control topic move time (replays, tests)",
    )
    tick_interval_s: float = Field(default=5.0, gt=0, description="how often deadlines are checked")
    snapshot_interval_s: float = Field(
        default=60.0, gt=0, description="how often a changed case partition's book is snapshot"
    )
    full_collection_interval_s: float = Field(
        default=3600.0,
        gt=0,
        description="how often the worker runs a full garbage collection (streams/garbage.py)",
    )
    finished_case_hours: float = Field(
        default=6.0,
        gt=0,
        description="a case no longer open stays in the worker's memory this long, then in its "
        "archive on disk (brought back when named again)",
    )
    idempotency_window_hours: float = Field(
        default=48.0,
        gt=0,
        description="a report's idempotency key or a command id is recognised again for at "
        "least half of this, at most all of it",
    )

    audit_case_events_per_share: int = Field(
        default=200_000,
        gt=0,
        description="`cityloop audit` folds at most about this many case events at once (some "
        "hundreds of MB); a partition holding more is read once per share of its cases",
    )

    database_url: str = Field(
        default="",
        description="SQLAlchemy async URL of the case read model; unset: cityloop.db in data_dir",
    )
    data_dir: Path = Field(
        default=Path("var"), description="everything a run keeps: the default read model, logs"
    )
    topology_file: Path | None = Field(default=None, description="unset: the bundled Chengdu file")
    classifier_model: Path | None = Field(
        default=None, description="the hotline text classifier; unset: the bundled model"
    )

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    worker_metrics_host: str = Field(
        default="127.0.0.1", description="where the worker serves its Prometheus metrics"
    )
    worker_metrics_port: int = Field(default=9464, ge=0, le=65535, description="0: no metrics")
    log_format: Literal["text", "json"] = Field(
        default="text", description="text lines, or one JSON object a line"
    )
    max_event_bytes: int = Field(default=1_000_000, description="larger ingest bodies get 413")
    publish_timeout_s: float = Field(default=10.0, description="ingest waits this long for acks")

    jwt_secret: SecretStr = Field(
        default=SecretStr(""),
        description="HMAC secret for API tokens; the API does not start without one",
    )

    @model_validator(mode="after")
    def _read_model_in_data_dir(self) -> Settings:
        if not self.database_url:
            self.database_url = default_database_url(self.data_dir)
        return self

    @property
    def bootstrap_servers(self) -> str:
        if self.kafka_bootstrap_servers:
            return self.kafka_bootstrap_servers
        return f"{self.broker_host}:{self.broker_port}"

    @property
    def embedded_broker(self) -> bool:
        return not self.kafka_bootstrap_servers


def default_database_url(data_dir: Path) -> str:
    """The read model when none is configured: a SQLite file in the data directory, so that two
    instances with data directories of their own never share (or wipe) one."""
    return f"sqlite+aiosqlite:///{data_dir / 'cityloop.db'}"


@lru_cache
def get_settings() -> Settings:
    return Settings()
