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
