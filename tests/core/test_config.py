"""Settings precedence: defaults < TOML file < environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import ConfigError, load_settings


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "outagewatch.toml"
    path.write_text(text)
    return path


def test_defaults_point_at_the_local_stack() -> None:
    settings = load_settings(env={})
    assert settings.kafka.bootstrap == "127.0.0.1:19092"
    assert settings.clickhouse.url.startswith("clickhouse://default:@127.0.0.1:19000/")
    assert settings.streams.window_seconds == 10


def test_file_overrides_defaults_and_environment_overrides_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[kafka]\nbootstrap = "file:9092"\npartitions = 3\n[streams]\nwindow_seconds = 30\n')
    settings = load_settings(path, env={"OUTAGEWATCH_KAFKA_BOOTSTRAP": "env:9092"})
    assert settings.kafka.bootstrap == "env:9092"
    assert settings.kafka.partitions == 3
    assert settings.streams.window_seconds == 30


def test_config_file_from_environment_variable(tmp_path: Path) -> None:
    path = write(tmp_path, '[topics]\nalerts = "team-alerts"\n')
    settings = load_settings(env={"OUTAGEWATCH_CONFIG": str(path)})
    assert settings.topics.alerts == "team-alerts"


def test_lists_come_from_comma_separated_environment_values() -> None:
    settings = load_settings(env={"OUTAGEWATCH_COLLECTOR_API_KEYS": "a:1, b:2"})
    assert settings.collector.api_keys == ("a:1", "b:2")


def test_paths_expand_the_home_directory() -> None:
    settings = load_settings(env={"OUTAGEWATCH_STACK_DATA_DIR": "~/ow"})
    assert settings.stack.data_dir == Path.home() / "ow"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"OUTAGEWATCH_KAFKA_PARTITIONS": "many"}, "OUTAGEWATCH_KAFKA_PARTITIONS: expected a number, got 'many'"),
        ({"OUTAGEWATCH_CONFIG": "/nonexistent/ow.toml"}, "config file /nonexistent/ow.toml does not exist"),
        ({"OUTAGEWATCH_EVENT_TIME_MAX_AHEAD_SECONDS": "-5"},
         "^OUTAGEWATCH_EVENT_TIME_MAX_AHEAD_SECONDS "),
    ],
)
def test_bad_values_name_the_setting(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        load_settings(env=env)


def test_unknown_keys_in_the_file_are_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\[kafka\] has unknown key\(s\) \['bootstrp'\]"):
        load_settings(write(tmp_path, '[kafka]\nbootstrp = "x"\n'), env={})
    with pytest.raises(ConfigError, match=r"unknown section\(s\) \['kafak'\]"):
        load_settings(write(tmp_path, "[kafak]\n"), env={})


def test_invalid_toml_says_so(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_settings(write(tmp_path, "[kafka\n"), env={})


def test_every_setting_has_an_environment_name() -> None:
    names = load_settings(env={}).env_names()
    assert "OUTAGEWATCH_KAFKA_BOOTSTRAP" in names
    assert "OUTAGEWATCH_CLICKHOUSE_URL" in names
    assert "OUTAGEWATCH_STREAMS_WINDOW_SECONDS" in names
