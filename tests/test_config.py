import subprocess
import sys
from pathlib import Path

import pytest

from quoteflow.config import ConfigError, load_config


def test_defaults_need_no_file():
    config = load_config(environ={})
    assert config.kafka.bootstrap == "127.0.0.1:9092"
    assert config.quote.strategy == "avellaneda-stoikov-infinite"


def test_file_then_environment(tmp_path):
    path = tmp_path / "quoteflow.toml"
    path.write_text(
        '[kafka]\nbootstrap = "k:1"\nprefix = "prod"\n[quote.params]\ngamma = "0.2"\n'
    )
    config = load_config(
        path,
        environ={
            "QUOTEFLOW_KAFKA__BOOTSTRAP": "k:2",
            "QUOTEFLOW_RECOVERY__SNAPSHOT_INTERVAL_S": "2.5",
        },
    )
    assert config.kafka.bootstrap == "k:2"
    assert config.kafka.prefix == "prod"
    assert config.quote.params == {"gamma": "0.2"}
    assert config.recovery.snapshot_interval_s == 2.5


@pytest.mark.parametrize(
    ("text", "environ", "message"),
    [
        ("[kafak]\nbootstrap = 'x'\n", {}, "kafak"),
        ("[kafka]\nbootstrap = 5\n", {}, "bootstrap"),
        ("[kafka\n", {}, "not valid TOML"),
        ("", {"QUOTEFLOW_RECOVERY__SNAPSHOT_INTERVAL_S": "soon"}, "snapshot_interval_s"),
    ],
)
def test_bad_configuration_names_the_culprit(tmp_path, text, environ, message):
    path = tmp_path / "quoteflow.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(path, environ=environ)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml", environ={})


def test_risk_limits_are_validated_at_load(tmp_path):
    path = tmp_path / "quoteflow.toml"
    path.write_text("[risk]\nmax_order_size = 'lots'\n")
    with pytest.raises(ConfigError, match="max_order_size"):
        load_config(path, environ={})
    path.write_text("[risk]\nmax_order_size = '0.5'\n")
    assert load_config(path, environ={}).risk == {"max_order_size": "0.5"}


@pytest.mark.parametrize(
    ("text", "environ", "culprit"),
    [
        ("[postgres]\ndns = 'postgresql://elsewhere/db'\n", {}, "dns"),
        ("[kafka]\nbootstrap_servers = 'elsewhere:9092'\n", {}, "bootstrap_servers"),
        ("", {"QUOTEFLOW_KAFKA__BOOTSTRAP_SERVERS": "elsewhere:9092"}, "bootstrap_servers"),
        ("[api]\nprot = 1\n", {}, "prot"),
        ("[secrets]\nbakend = 'vault'\n", {}, "bakend"),
    ],
)
def test_unknown_keys_are_refused_in_every_section(tmp_path, text, environ, culprit):
    """A typo never falls back to a default (which once pointed a process at another
    deployment's servers)."""
    path = tmp_path / "quoteflow.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=culprit) as error:
        load_config(path, environ=environ)
    assert "\n" not in str(error.value)


def test_cli_names_an_unknown_key_in_one_line_and_exits_2(tmp_path):
    path = tmp_path / "quoteflow.toml"
    path.write_text("[postgres]\ndns = 'postgresql://elsewhere/db'\n")
    result = subprocess.run(
        [str(Path(sys.executable).with_name("quoteflow")), "api", "--config", str(path)],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert "dns" in result.stderr and "Traceback" not in result.stderr
