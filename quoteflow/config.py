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
from decimal import Decimal
from pathlib import Path

import msgspec

from connectors.execution.deadman import check_timeout
from connectors.kafka.command_keys import CommandsConfig
from connectors.kafka.config import KafkaConfig
from connectors.paper.config import PaperConfig
from connectors.timescale.config import TimescaleConfig
from models.risk import LimitsError, parse_limits

ENV_PREFIX = "QUOTEFLOW_"


class QuoteConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    strategy: str = "avellaneda-stoikov-infinite"
    params: dict[str, str] = {}
    max_inventory_lots: str = "10"
    prediction_weight: float = 0.0
    requote_ms: float = 0.0  # 0: quote on book changes; else every N ms of market time


class RecoveryConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    directory: str | None = None
    snapshot_interval_s: float = 5.0
    backup_interval_s: float = 0.0


class KeycloakConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    issuer: str = "http://127.0.0.1:8080/realms/quoteflow"
    audience: str = "quoteflow-api"
    # The API's confidential client, whose secret (env QUOTEFLOW_API_CLIENT_SECRET, never
    # this file) lets it introspect tokens; off, actions rely on token expiry alone.
    client_id: str = "quoteflow-api"
    introspect: bool = True


class SecretsConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    backend: str = "local"
    path: str = "~/.local/share/quoteflow/keys.json"
    vault_addr: str | None = None
    vault_mount: str = "secret"
    vault_transit_key: str = "quoteflow"


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
        if self.max_body_bytes < 1:
            raise ValueError(f"api.max_body_bytes must be >= 1, got {self.max_body_bytes}")


class ExecuteConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The executor process (`quoteflow execute`); see docs/executor.md."""

    venue: str = "paper"  # "paper": matched on md.*; "ccxt": the live exchange
    exchange: str = "binance"  # ccxt exchange id, the `venue` of the intents acted on
    symbols: list[str] = []  # unified symbols traded, e.g. ["BTC/USDT"]
    # Whose exchange keys a ccxt venue trades with: the owner's Keycloak subject.
    owner: str | None = None
    sandbox: bool = False
    ccxt_options: dict = {}  # extra ccxt constructor settings (timeouts, urls)
    supports_amend: bool = False  # the exchange's editOrder modifies in place (docs/executor.md)
    key_poll_interval_s: float = 5.0
    intent_max_age_s: float = 2.0
    price_tolerance: str = "0"
    size_tolerance: str = "0"
    post_only: bool = True
    reconcile_interval_s: float = 30.0
    # The exchange-side dead-man's switch where the venue has one (connectors/execution/
    # deadman.py): the venue cancels our orders this long after the executor stops re-arming
    # it (every third of it). 0 turns it off.
    deadman_timeout_s: float = 60.0
    paper_rate_limit_ms: float = 50.0  # the paper venue's request budget (ccxt's own otherwise)
    rate_limit_capacity: float = 1.0
    group: str = "executor"  # Kafka consumer group: offsets survive restarts
    audit_path: str = "~/.local/share/quoteflow/executor-audit.jsonl"

    def __post_init__(self) -> None:
        if self.venue not in ("paper", "ccxt"):
            raise ValueError(f"execute.venue must be 'paper' or 'ccxt', not {self.venue!r}")
        if self.venue == "ccxt" and not self.owner:
            raise ValueError("execute.owner is required for a ccxt venue: whose keys to trade")
        if not self.symbols:
            raise ValueError("execute.symbols must list at least one symbol")
        if self.deadman_timeout_s < 0:
            raise ValueError("execute.deadman_timeout_s must be >= 0 (0 turns it off)")
        if self.venue == "ccxt":
            check_timeout(self.exchange, self.deadman_timeout_s)
        for name in ("price_tolerance", "size_tolerance"):
            try:
                valid = Decimal(getattr(self, name)) >= 0
            except ArithmeticError:
                valid = False
            if not valid:
                raise ValueError(f"execute.{name} must be a number >= 0")


class Config(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """`risk` is the limits table of `models.risk.parse_limits` (see docs/risk.md)."""

    kafka: KafkaConfig = msgspec.field(default_factory=KafkaConfig)
    commands: CommandsConfig = msgspec.field(default_factory=CommandsConfig)
    quote: QuoteConfig = msgspec.field(default_factory=QuoteConfig)
    recovery: RecoveryConfig = msgspec.field(default_factory=RecoveryConfig)
    postgres: TimescaleConfig = msgspec.field(default_factory=TimescaleConfig)
    keycloak: KeycloakConfig = msgspec.field(default_factory=KeycloakConfig)
    secrets: SecretsConfig = msgspec.field(default_factory=SecretsConfig)
    api: ApiConfig = msgspec.field(default_factory=ApiConfig)
    paper: PaperConfig = msgspec.field(default_factory=PaperConfig)
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
