"""Payment settings: environment over file, not enrolled by default, secrets never shown."""

from __future__ import annotations

import copy
import pickle
from pathlib import Path

import pytest

from recon.processors.settings import (
    PaymentSettingsError,
    Secret,
    load_settings,
    make_processor,
)
from recon.processors.stripe import StripeProcessor
from recon.processors.vantage import VantageProcessor

SK = "sk_test_51SuperSecretValue000"
TK = "9xY7transactionKeySecret"


def test_not_enrolled_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.config/recon/payments.toml there
    settings = load_settings(env={})
    assert settings.processor == "none" and not settings.enrolled
    assert make_processor(settings) is None


def test_stripe_from_env_masks_the_secret(tmp_path: Path) -> None:
    env = {
        "RECON_CONFIG": str(tmp_path / "none.toml"),
        "RECON_PROCESSOR": "stripe",
        "RECON_STRIPE_SECRET_KEY": SK,
        "RECON_STRIPE_PUBLISHABLE_KEY": "pk_test_public",
        "RECON_STRIPE_API_BASE": "http://127.0.0.1:8420",
        "RECON_STRIPE_MOTO": "1",
    }
    (tmp_path / "none.toml").write_text("")
    settings = load_settings(env=env)
    assert settings.stripe is not None and settings.stripe.moto
    for shown in (repr(settings), str(settings), f"{settings.stripe}", repr(settings.stripe)):
        assert SK not in shown and "SuperSecret" not in shown
    processor = make_processor(settings)
    assert isinstance(processor, StripeProcessor)
    assert SK not in repr(processor) and SK not in repr(processor.browser_config())
    assert settings.stripe.secret_key.reveal() == SK


def test_vantage_from_file_with_env_override(tmp_path: Path) -> None:
    config = tmp_path / "payments.toml"
    config.write_text(
        'processor = "vantage"\n'
        "[vantage]\n"
        'api_login_id = "login-from-file"\n'
        f'transaction_key = "{TK}"\n'
        'client_key = "client-from-file"\n'
        "duplicate_window = 600\n"
    )
    settings = load_settings(
        env={"RECON_CONFIG": str(config), "RECON_VANTAGE_CLIENT_KEY": "client-from-env"}
    )
    assert settings.vantage is not None
    assert settings.vantage.client_key == "client-from-env"
    assert settings.vantage.api_login_id == "login-from-file"
    assert settings.vantage.duplicate_window == 600
    assert TK not in repr(settings)
    processor = make_processor(settings)
    assert isinstance(processor, VantageProcessor)
    assert TK not in repr(processor.browser_config())


def test_missing_key_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(PaymentSettingsError, match="RECON_STRIPE_SECRET_KEY"):
        load_settings(
            env={
                "RECON_CONFIG": str(tmp_path / "x.toml"),
                "RECON_PROCESSOR": "stripe",
                "RECON_STRIPE_PUBLISHABLE_KEY": "pk_test_x",
            },
            config_path=_empty(tmp_path),
        )


def test_unknown_processor_and_bad_window(tmp_path: Path) -> None:
    with pytest.raises(PaymentSettingsError, match="not known"):
        load_settings(env={"RECON_PROCESSOR": "paypal"}, config_path=_empty(tmp_path))
    with pytest.raises(PaymentSettingsError, match="28800"):
        load_settings(
            env={
                "RECON_PROCESSOR": "vantage",
                "RECON_VANTAGE_API_LOGIN_ID": "l",
                "RECON_VANTAGE_TRANSACTION_KEY": "k",
                "RECON_VANTAGE_CLIENT_KEY": "c",
                "RECON_VANTAGE_DUPLICATE_WINDOW": "99999",
            },
            config_path=_empty(tmp_path),
        )


def test_named_config_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(PaymentSettingsError, match="does not exist"):
        load_settings(env={"RECON_CONFIG": str(tmp_path / "missing.toml")})


def test_secret_is_not_pickled() -> None:
    with pytest.raises(TypeError):
        pickle.dumps(Secret(SK))
    assert str(Secret("short")) == "…(masked)"
    assert copy.deepcopy(Secret(SK)).reveal() == SK


def _empty(tmp_path: Path) -> Path:
    path = tmp_path / "empty.toml"
    path.write_text("")
    return path
