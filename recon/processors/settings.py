"""A practice's payment-processing settings, read from the environment or a TOML file.

Keys live outside the notebooks (environment variables, or ``RECON_CONFIG`` /
``~/.config/recon/payments.toml``) so that a notebook shared with a colleague never
carries a secret. Secrets are wrapped in :class:`Secret`, whose ``repr`` and ``str``
are masked: printing the settings in a notebook cell shows ``'sk_t…(masked)'``.
Environment variables win over the file, key by key.

A practice with no processor (``processor = "none"``, the default) is not enrolled
in payment processing: :func:`make_processor` returns None and the card payment
method is not offered.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from recon.errors import ProcessorError
from recon.processors.base import Processor

DEFAULT_CONFIG = "~/.config/recon/payments.toml"
STRIPE_JS_URL = "https://js.stripe.com/v3/"
AUTHNET_API_URL = "https://api.authorize.net/xml/v1/request.api"
ACCEPT_JS_URL = "https://js.authorize.net/v1/Accept.js"
# Authorize.Net accepts at most 8 hours; the whole window protects a retried charge,
# and a genuinely new payment never collides because its invoiceNumber differs.
MAX_DUPLICATE_WINDOW = 28800


class PaymentSettingsError(ProcessorError):
    """Payment settings that are missing or contradictory."""


class Secret:
    """A credential that never shows itself in a repr, a log line or a notebook output."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The raw value, for the one place that sends it to the processor."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({self._masked()!r})"

    def __str__(self) -> str:
        return self._masked()

    def _masked(self) -> str:
        return f"{self._value[:4]}…(masked)" if len(self._value) > 8 else "…(masked)"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> Any:
        # Pickling would write the key into whatever file or widget state holds it.
        raise TypeError("a Secret is not serialised")

    def __copy__(self) -> Secret:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Secret:
        return self  # immutable; deepcopy of settings must not fall back to pickling


@dataclass(frozen=True)
class StripeSettings:
    secret_key: Secret
    publishable_key: str
    api_base: str | None = None
    js_url: str = STRIPE_JS_URL
    moto: bool = False
    timeout: float = 30.0


@dataclass(frozen=True)
class VantageSettings:
    api_login_id: str
    transaction_key: Secret
    client_key: str
    api_url: str = AUTHNET_API_URL
    accept_js_url: str = ACCEPT_JS_URL
    duplicate_window: int = MAX_DUPLICATE_WINDOW
    timeout: float = 30.0


@dataclass(frozen=True)
class PaymentSettings:
    processor: Literal["stripe", "vantage", "none"]
    stripe: StripeSettings | None = None
    vantage: VantageSettings | None = None

    @property
    def enrolled(self) -> bool:
        """Whether the practice is enrolled in payment processing (card method offered)."""
        return self.processor != "none"


_ENV = {
    "stripe": {
        "secret_key": "RECON_STRIPE_SECRET_KEY",
        "publishable_key": "RECON_STRIPE_PUBLISHABLE_KEY",
        "api_base": "RECON_STRIPE_API_BASE",
        "js_url": "RECON_STRIPE_JS_URL",
        "moto": "RECON_STRIPE_MOTO",
        "timeout": "RECON_PROCESSOR_TIMEOUT",
    },
    "vantage": {
        "api_login_id": "RECON_VANTAGE_API_LOGIN_ID",
        "transaction_key": "RECON_VANTAGE_TRANSACTION_KEY",
        "client_key": "RECON_VANTAGE_CLIENT_KEY",
        "api_url": "RECON_VANTAGE_API_URL",
        "accept_js_url": "RECON_VANTAGE_ACCEPT_JS_URL",
        "duplicate_window": "RECON_VANTAGE_DUPLICATE_WINDOW",
        "timeout": "RECON_PROCESSOR_TIMEOUT",
    },
}


def load_settings(
    env: Mapping[str, str] | None = None, config_path: str | Path | None = None
) -> PaymentSettings:
    """Read the practice's payment settings (environment over file over defaults)."""
    env = os.environ if env is None else env
    path = Path(config_path or env.get("RECON_CONFIG") or DEFAULT_CONFIG).expanduser()
    file = _read_toml(path, explicit=bool(config_path or env.get("RECON_CONFIG")))
    processor = (env.get("RECON_PROCESSOR") or str(file.get("processor", "none"))).strip().lower()
    if processor not in ("stripe", "vantage", "none", ""):
        raise PaymentSettingsError(
            f"Payment processor {processor!r} is not known; use stripe, vantage or none."
        )
    if processor in ("none", ""):
        return PaymentSettings(processor="none")
    section = file.get(processor, {})
    if not isinstance(section, dict):
        raise PaymentSettingsError(f"{path}: [{processor}] must be a table of settings.")
    values = {k: env.get(var) or section.get(k) for k, var in _ENV[processor].items()}
    values = {k: v for k, v in values.items() if v not in (None, "")}
    if processor == "stripe":
        return PaymentSettings(processor="stripe", stripe=_stripe(values))
    return PaymentSettings(processor="vantage", vantage=_vantage(values))


def _read_toml(path: Path, *, explicit: bool) -> dict[str, Any]:
    if not path.exists():
        if explicit:
            raise PaymentSettingsError(f"Payment settings file {path} does not exist.")
        return {}
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise PaymentSettingsError(f"Payment settings file {path} cannot be read: {exc}") from exc


def _require(values: dict[str, Any], processor: str, *keys: str) -> None:
    missing = [_ENV[processor][k] for k in keys if not values.get(k)]
    if missing:
        raise PaymentSettingsError(
            f"Payment processing is set to {processor} but {', '.join(missing)} "
            "is not set (environment or payments.toml)."
        )


def _flag(value: Any) -> bool:
    return value is True or str(value).strip().lower() in ("1", "true", "yes", "on")


def _number(values: dict[str, Any], key: str, default: float) -> float:
    try:
        return float(values.get(key, default))  # not money: a timeout in seconds
    except (TypeError, ValueError) as exc:
        raise PaymentSettingsError(f"{key} must be a number of seconds.") from exc


def _stripe(values: dict[str, Any]) -> StripeSettings:
    _require(values, "stripe", "secret_key", "publishable_key")
    return StripeSettings(
        secret_key=Secret(str(values["secret_key"])),
        publishable_key=str(values["publishable_key"]),
        api_base=values.get("api_base"),
        js_url=str(values.get("js_url", STRIPE_JS_URL)),
        moto=_flag(values.get("moto", False)),
        timeout=_number(values, "timeout", 30.0),
    )


def _vantage(values: dict[str, Any]) -> VantageSettings:
    _require(values, "vantage", "api_login_id", "transaction_key", "client_key")
    window = int(_number(values, "duplicate_window", MAX_DUPLICATE_WINDOW))
    if not 0 <= window <= MAX_DUPLICATE_WINDOW:
        raise PaymentSettingsError(
            f"duplicate_window must be between 0 and {MAX_DUPLICATE_WINDOW} seconds."
        )
    return VantageSettings(
        api_login_id=str(values["api_login_id"]),
        transaction_key=Secret(str(values["transaction_key"])),
        client_key=str(values["client_key"]),
        api_url=str(values.get("api_url", AUTHNET_API_URL)),
        accept_js_url=str(values.get("accept_js_url", ACCEPT_JS_URL)),
        duplicate_window=window,
        timeout=_number(values, "timeout", 30.0),
    )


def make_processor(settings: PaymentSettings) -> Processor | None:
    """The practice's processor, or None when it is not enrolled in payment processing."""
    if settings.processor == "stripe" and settings.stripe is not None:
        from recon.processors.stripe import StripeProcessor

        return StripeProcessor(settings.stripe)
    if settings.processor == "vantage" and settings.vantage is not None:
        from recon.processors.vantage import VantageProcessor

        return VantageProcessor(settings.vantage)
    return None
