"""Settings: defaults, then a TOML file, then ``TASKSTORE_*`` environment variables, then
explicit overrides (tests, ``serve --demo``). A bad value stops start-up naming the setting."""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections import Counter
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, TomlConfigSettingsSource

ENV_PREFIX = "TASKSTORE_"
# Read before the settings exist, so they are not settings themselves.
BOOTSTRAP_VARIABLES = {f"{ENV_PREFIX}CONFIG_FILE", f"{ENV_PREFIX}INSTANCE_PATH"}
CONFIG_FILE_NAME = "taskstore.toml"
MIN_SECRET_KEY_LENGTH = 32
# A secret must look random: at least this many distinct characters and this many bits by the
# characters' own frequencies (48 characters of secrets.token_urlsafe give about 250).
MIN_SECRET_DISTINCT_CHARACTERS = 10
MIN_SECRET_ENTROPY_BITS = 96


class ConfigError(RuntimeError):
    """A setting is missing or has a bad value; the message names it."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", case_sensitive=False)

    database_url: str | None = Field(
        None, description="SQLAlchemy URL. Default: a SQLite file `taskstore.db` in the instance folder."
    )
    secret_key: SecretStr | None = Field(
        None, description="Signs worker tokens and session cookies. Required (at least 32 characters)."
    )
    default_retention_days: int = Field(
        30, ge=0, description="Expiry for keys written with the default retention; 0 = never expire."
    )
    clear_on_success: bool = Field(False, description="Clear a task instance's keys when it reaches success.")
    max_value_bytes: int = Field(
        65535, ge=0, description="Soft limit on a serialized value (admin API and UI refuse more); 0 = none."
    )
    max_request_bytes: int = Field(
        1024 * 1024, ge=1024, description="Hard limit on a request body; larger bodies get 413."
    )
    cleanup_batch_size: int = Field(1000, ge=1, le=100_000, description="Rows deleted per transaction by `clean`.")
    cleanup_pause_ratio: float = Field(
        1.0, ge=0, le=100,
        description="After each batch `clean` pauses this many times as long as the batch took, leaving the "
                    "database and CPU to workers (1 = half the time; 0 = no pause).",
    )
    token_lifetime_seconds: int = Field(600, ge=30, description="Lifetime of a worker token.")
    db_pool_size: int = Field(5, ge=1, description="Connections kept open per process (not SQLite).")
    db_max_overflow: int = Field(10, ge=0, description="Extra connections a process may open under load.")
    db_pool_timeout_seconds: float = Field(
        5.0, gt=0, description="Wait for a free pooled connection before answering 503."
    )
    db_connect_timeout_seconds: int = Field(
        5, ge=1, description="Wait for a database connection before answering 503."
    )
    db_pooler: Literal["none", "transaction"] = Field(
        "none", description="PostgreSQL: none (a direct connection), or transaction (behind PgBouncer in "
                            "pool_mode = transaction or session: no prepared statements, no startup options, the "
                            "worker's deadline enforced by cancelling the statement).",
    )
    sqlite_busy_timeout_ms: int = Field(5000, ge=0, description="SQLite: wait for a lock before answering 503.")
    sqlite_synchronous: Literal["normal", "full"] = Field(
        "normal", description="SQLite durability: normal survives a process crash, full also a power loss "
                              "(each commit waits for the disk).",
    )
    asset_access: Literal["any", "declared"] = Field(
        "any", description="Which assets a task instance's token may read and write: any (as Airflow), or only "
                           "those its task declared as inlets or outlets when its run was created.",
    )
    db_statement_timeout_seconds: float = Field(
        5.0, gt=0, le=3600,
        description="Deadline of a worker call's statements (PostgreSQL, MariaDB): past it, 503 with Retry-After.",
    )
    db_admin_statement_timeout_seconds: float = Field(
        30.0, gt=0, le=3600,
        description="Deadline of a statement of the UI, the admin API and the CLI (listings, edits, clean batches).",
    )
    health_timeout_seconds: float = Field(
        2.0, gt=0, le=60, description="Deadline of /health's database check: past it, 503 naming the check.",
    )
    session_idle_timeout_minutes: int = Field(
        120, ge=1, le=60 * 24 * 30, description="A UI login ends after this long without a request."
    )
    session_lifetime_hours: int = Field(
        24, ge=1, le=24 * 90, description="A UI login ends this long after it began, however active."
    )
    trusted_proxy_hops: int = Field(
        0, ge=0, le=10,
        description="Reverse proxies in front of the service whose X-Forwarded-For/-Proto to trust (0: none). "
                    "Gives the real client address to the login throttle and the scheme to secure cookies.",
    )
    cookie_secure: Literal["auto", "always", "never"] = Field(
        "auto", description="Mark the session cookie Secure: auto = when the request came over HTTPS."
    )
    metrics: Literal["on", "api-key", "off"] = Field(
        "on", description="Prometheus metrics at /metrics: on (readable without credentials), api-key (an API key "
                          "with the metrics or admin role), off (404, and nothing is counted).",
    )
    log_format: Literal["json", "text", "auto"] = Field(
        "auto", description="Log lines on stderr: json (one object per line), text, or auto (text when stderr is a "
                            "terminal, json otherwise).",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        "INFO", description="Lowest level logged; INFO includes one line per request, WARNING leaves those out.",
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _level_in_any_case(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("database_url")
    @classmethod
    def _url_parses(cls, value: str | None) -> str | None:
        if value is None:
            return value
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            make_url(value)
        except ArgumentError as exc:
            raise ValueError(f"not a database URL ({exc})") from None
        return value


def settings_documentation() -> list[tuple[str, str, str]]:
    """(environment variable, default, description) for every setting, for the README and --help."""
    rows = []
    for name, field in Settings.model_fields.items():
        default = "" if field.default is None else str(field.default)
        rows.append((ENV_PREFIX + name.upper(), default, field.description or ""))
    return rows


def config_file_path(instance_path: str) -> Path | None:
    explicit = os.environ.get(f"{ENV_PREFIX}CONFIG_FILE")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"{ENV_PREFIX}CONFIG_FILE: {path} does not exist")
        return path
    default = Path(instance_path) / CONFIG_FILE_NAME
    return default if default.is_file() else None


def _reject_unknown_environment() -> None:
    known = {ENV_PREFIX + name.upper() for name in Settings.model_fields} | BOOTSTRAP_VARIABLES
    unknown = sorted(k for k in os.environ if k.upper().startswith(ENV_PREFIX) and k.upper() not in known)
    if unknown:
        raise ConfigError(f"{unknown[0]}: not a setting of Task Store (known: {', '.join(sorted(known))})")


def load_settings(instance_path: str, overrides: dict[str, Any] | None = None) -> Settings:
    """Layer the sources and validate; ConfigError names the first bad setting."""
    _reject_unknown_environment()
    toml_file = config_file_path(instance_path)

    class LayeredSettings(Settings):
        @classmethod
        def settings_customise_sources(cls, settings_cls, init_settings, env_settings, **_unused):
            sources = [init_settings, env_settings]
            if toml_file is not None:
                sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
            return tuple(sources)

    try:
        return LayeredSettings(**(overrides or {}))
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{toml_file}: not a valid TOML file ({exc})") from None


def _describe(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        name = ENV_PREFIX + ".".join(str(part) for part in error["loc"]).upper()
        shown = error.get("input")
        if "secret" in name.lower():
            shown = "***"
        elif isinstance(shown, str) and name == f"{ENV_PREFIX}DATABASE_URL":
            shown = re.sub(r"(://[^/@:]*:)[^@]*@", r"\1***@", shown)  # never print the password
        lines.append(f"{name}: {error['msg']} (got {shown!r})")
    return "invalid configuration:\n  " + "\n  ".join(lines)


def require_secret_key(settings: Settings) -> str:
    if settings.secret_key is None:
        raise ConfigError(
            f"{ENV_PREFIX}SECRET_KEY: not set. Set it to a random string of at least "
            f"{MIN_SECRET_KEY_LENGTH} characters (python -c 'import secrets; print(secrets.token_urlsafe(48))'), "
            "or use `taskstore serve --demo` to try Task Store with a generated one."
        )
    secret = settings.secret_key.get_secret_value()
    if len(secret) < MIN_SECRET_KEY_LENGTH:
        raise ConfigError(f"{ENV_PREFIX}SECRET_KEY: must be at least {MIN_SECRET_KEY_LENGTH} characters long")
    distinct, bits = len(set(secret)), _entropy_bits(secret)
    if distinct < MIN_SECRET_DISTINCT_CHARACTERS or bits < MIN_SECRET_ENTROPY_BITS:
        raise ConfigError(
            f"{ENV_PREFIX}SECRET_KEY: looks too predictable to sign tokens and sessions ({distinct} distinct "
            f"characters, about {bits:.0f} bits; at least {MIN_SECRET_DISTINCT_CHARACTERS} and "
            f"{MIN_SECRET_ENTROPY_BITS} are needed). Generate one: "
            "python -c 'import secrets; print(secrets.token_urlsafe(48))'"
        )
    return secret


def _entropy_bits(text: str) -> float:
    """Shannon entropy of the text by its own character frequencies, times its length."""
    counts = Counter(text)
    return max(0.0, -sum(count * math.log2(count / len(text)) for count in counts.values()))
