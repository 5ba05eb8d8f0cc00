"""The "test" of a stored exchange key: one harmless authenticated ccxt call, fetch_balance.

It reads and changes nothing on the account. Every outcome is a result, not an error:
`unreachable` (network, DNS, timeout, exchange down: the key was not judged), `rejected`
(the exchange refused the key or its permissions), `exchange_error` (anything else the
exchange answered), `unsupported` (no sandbox or no balance endpoint in ccxt). The detail
is ccxt's message without query strings and with every piece of the key material blanked
out, cut to a readable size.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import ccxt
import ccxt.async_support as ccxt_async

from connectors.execution.keys import CCXT_LOGGER
from connectors.secrets import ExchangeCredentials

_MAX_DETAIL = 300
_QUERY = re.compile(r"\?\S*")
# Most specific first: ccxt's AuthenticationError and PermissionDenied are ExchangeErrors.
_OUTCOMES: tuple[tuple[type[Exception], str], ...] = (
    (ccxt.NetworkError, "unreachable"),
    (ccxt.AuthenticationError, "rejected"),
    (ccxt.PermissionDenied, "rejected"),
    (ccxt.AccountSuspended, "rejected"),
    (ccxt.NotSupported, "unsupported"),
    (ccxt.ExchangeError, "exchange_error"),
)


async def check_key(
    exchange_id: str,
    credentials: ExchangeCredentials,
    *,
    sandbox: bool,
    timeout_s: float,
    overrides: Mapping[str, Any] | None = None,
) -> tuple[str, str]:
    """(outcome, detail) of an authenticated fetch_balance with `credentials`."""
    settings = {
        **credentials.to_ccxt_config(),
        "timeout": int(timeout_s * 1000),
        "enableRateLimit": False,  # one call; ccxt's pacing would only add a delay
        "logger": CCXT_LOGGER,  # not ccxt's: it logs request headers (the api key) at DEBUG
        **(overrides or {}),
    }
    exchange = getattr(ccxt_async, exchange_id)(settings)
    try:
        if sandbox:
            exchange.set_sandbox_mode(True)
        balance = await exchange.fetch_balance()
    except Exception as error:
        for kind, outcome in _OUTCOMES:
            if isinstance(error, kind):
                return outcome, _detail(error, credentials)
        raise
    finally:
        await exchange.close()
    held = sum(1 for total in balance.get("total", {}).values() if total)
    return "ok", f"authenticated; balances in {held} currencies"


def _detail(error: Exception, credentials: ExchangeCredentials) -> str:
    # Query strings of signed requests carry signatures and timestamps: noise at best.
    text = _QUERY.sub("", f"{type(error).__name__}: {error}")
    for material in credentials.as_tuple():
        if material:
            text = text.replace(material, "***")
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 1] + "…"
