"""The dagster.yaml the project writes: telemetry and the community dialog off, pool limits set."""

from __future__ import annotations

from pathlib import Path

import yaml

from dagster_project.pools import DEFAULT_LIMIT, write_instance_config


def test_new_instance_config_turns_the_community_dialog_off(tmp_path: Path) -> None:
    cfg = yaml.safe_load(write_instance_config(tmp_path / "home").read_text())
    assert cfg["nux"] == {"enabled": False} and cfg["telemetry"] == {"enabled": False}
    assert cfg["concurrency"]["pools"]["default_limit"] == DEFAULT_LIMIT


def test_a_kept_config_gets_the_nux_section_once_and_keeps_its_own_settings(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: true\nconcurrency:\n  pools:\n    default_limit: 4")
    for _ in range(2):
        cfg = yaml.safe_load(write_instance_config(home, overwrite=False).read_text())
    assert cfg == {"telemetry": {"enabled": True}, "concurrency": {"pools": {"default_limit": 4}},
                   "nux": {"enabled": False}}
    (home / "dagster.yaml").write_text("nux:\n  enabled: true\n")
    assert yaml.safe_load(write_instance_config(home, overwrite=False).read_text()) == {"nux": {"enabled": True}}
