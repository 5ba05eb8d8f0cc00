"""Production wiring is chosen by configuration, never by code edits.

A TOML file (optional) overlaid with environment variables: `QUOTEFLOW_<SECTION>__<KEY>`
(double underscore between levels), e.g. `QUOTEFLOW_KAFKA__BOOTSTRAP=10.0.0.5:9092`. Values
from the environment are parsed as TOML scalars when they look like one (`5`, `true`,
`["a","b"]`), else taken as strings. Unknown sections or keys are errors, so a typo never
silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import typing
from collections.abc import Mapping
from pathlib import Path

import msgspec

from connectors.execution.config import ExecuteConfig
from connectors.kafka.command_keys import CommandsConfig
from connectors.kafka.config import KafkaConfig
from connectors.paper.config import PaperConfig
from connectors.secrets.config import SecretsConfig
from connectors.timescale.config import TimescaleConfig
from flows.runner import Recovery
from models.risk import LimitsError, parse_limits
from models.surveillance import SurveillanceConfig

ENV_PREFIX = "QUOTEFLOW_"


class QuoteConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    strategy: str = "avellaneda-stoikov-infinite"
    params: dict[str, str] = {}
    max_inventory_lots: str = "10"
    prediction_weight: float = 0.0
    requote_ms: float = 0.0  # 0: quote on book changes; else every N ms of market time
    # Quote on the bookTicker alone, with no L2 book (a paper executor then matches on it too,
    # as a backtest's venue shares its session's book); default: the fresher of the two.
    top_of_book: bool = False
    # A lockstep replay (docs/paper-venue.md, "One engine"): see each market event only once
    # the executor (`[execute] lockstep`) has matched it, as a backtest does. Replays only.
    lockstep: bool = False

    def __post_init__(self) -> None:
        if self.lockstep and self.requote_ms:
            raise ValueError("quote.lockstep needs event-driven quoting (requote_ms = 0)")


class KeycloakConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    issuer: str = "http://127.0.0.1:8080/realms/quoteflow"
    audience: str = "quoteflow-api"
    # The API's confidential client, whose secret (env QUOTEFLOW_API_CLIENT_SECRET, never
    # this file) lets it introspect tokens; off, actions rely on token expiry alone.
    client_id: str = "quoteflow-api"
    introspect: bool = True


class ApiConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The control API (`quoteflow api`); see docs/api.md."""

    host: str = "127.0.0.1"
    port: int = 8000
    # Browser origins allowed to call the API; none by default, and never "*".
    cors_origins: list[str] = []
    max_body_bytes: int = 65_536
    audit_path: str = "~/.local/share/quoteflow/api-audit.jsonl"
    exchange_sandbox: bool = False
    key_test_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if "*" in self.cors_origins:
            raise ValueError("api.cors_origins must list origins, not '*'")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"api.port must be 0 to 65535, got {self.port}")
        if self.max_body_bytes < 1:
            raise ValueError(f"api.max_body_bytes must be >= 1, got {self.max_body_bytes}")


class LoggingConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """How processes log (quoteflow/logs.py); `--log-format` wins. None: as Python does."""

    format: typing.Literal["text", "ecs"] | None = None
    level: typing.Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"


class Config(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """`risk` is the limits table of `models.risk.parse_limits` (see docs/risk.md)."""

    kafka: KafkaConfig = msgspec.field(default_factory=KafkaConfig)
    commands: CommandsConfig = msgspec.field(default_factory=CommandsConfig)
    quote: QuoteConfig = msgspec.field(default_factory=QuoteConfig)
    recovery: Recovery = msgspec.field(default_factory=Recovery)
    postgres: TimescaleConfig = msgspec.field(default_factory=TimescaleConfig)
    keycloak: KeycloakConfig = msgspec.field(default_factory=KeycloakConfig)
    secrets: SecretsConfig = msgspec.field(default_factory=SecretsConfig)
    api: ApiConfig = msgspec.field(default_factory=ApiConfig)
    paper: PaperConfig = msgspec.field(default_factory=PaperConfig)
    surveillance: SurveillanceConfig = msgspec.field(default_factory=SurveillanceConfig)
    logging: LoggingConfig = msgspec.field(default_factory=LoggingConfig)
    execute: ExecuteConfig | None = None  # only `quoteflow execute` needs it
    risk: dict = {}


class ConfigError(ValueError):
    """A configuration that cannot be used; the message names the file or variable at fault."""


def load_config(path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Config:
    raw: dict = {}
    if path is not None:
        path = Path(path)
        try:
            raw = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except OSError as error:  # a directory, no read permission
            raise ConfigError(f"config file {path} cannot be read: {error.strerror}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"config file {path} is not UTF-8 text (TOML)") from None
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"config file {path} is not valid TOML: {error}") from None
        _refuse_file_secrets(raw, path)
    _overlay_environment(raw, os.environ if environ is None else environ)
    source = f"config file {path} or " if path is not None else ""
    try:
        _refuse_unknown_keys(raw)
        config = msgspec.convert(raw, Config, str_keys=True)
        parse_limits(config.risk)
    except (msgspec.ValidationError, LimitsError) as error:
        raise ConfigError(
            f"invalid configuration ({source}{ENV_PREFIX}* variables): {error}"
        ) from None
    return config


def _refuse_unknown_keys(raw: Mapping) -> None:
    """Unknown keys in the sections that are dataclasses (msgspec ignores extra keys there,
    while the Struct sections refuse them): `[postgres] dns=` must not load the default DSN."""
    for name, kind in typing.get_type_hints(Config).items():
        section = raw.get(name)
        kind = next((k for k in typing.get_args(kind) if k is not type(None)), kind)
        if not isinstance(section, Mapping) or not dataclasses.is_dataclass(kind):
            continue
        known = {f.name for f in dataclasses.fields(kind) if f.init}
        unknown = sorted(set(section) - known)
        if unknown:
            raise msgspec.ValidationError(
                f"Object contains unknown field `{unknown[0]}` - at `$.{name}`"
                f" (known: {', '.join(sorted(known))})"
            )


# Secrets that only the environment (or a file of their own) may hold: a configuration file
# is shared, copied and committed. (section, key) pairs.
FILE_FORBIDDEN_SECRETS = frozenset({("kafka", "password"), ("commands", "signing_key")})


def _refuse_file_secrets(raw: dict, path: Path) -> None:
    for section, key in sorted(FILE_FORBIDDEN_SECRETS):
        if isinstance(raw.get(section), dict) and key in raw[section]:
            variable = f"{ENV_PREFIX}{section.upper()}__{key.upper()}"
            raise ConfigError(
                f"config file {path}: {section}.{key} is a secret and must not be in the file; "
                f"set {variable} or {section}.{key}_file (a file readable by its owner only)"
            )


def _overlay_environment(raw: dict, environ: Mapping[str, str]) -> None:
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        *sections, key = name[len(ENV_PREFIX):].lower().split("__")
        target = raw
        for section in sections:
            target = target.setdefault(section, {})
            if not isinstance(target, dict):
                raise ConfigError(f"{name}: {section} is a value, not a section")
        # A secret is taken as written: `123456` stays a string, not a number.
        target[key] = value if (*sections, key) in FILE_FORBIDDEN_SECRETS else _scalar(value)


def _scalar(text: str):
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text
