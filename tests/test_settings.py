"""One settings model for every process: file, environment, flags; secrets never shown."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from smart import settings

SMART = str(Path(sys.executable).parent / "smart")


def test_environment_overrides_settings_file_and_flags_override_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file = tmp_path / "smart.toml"
    file.write_text('stations = 4\nweb_port = 9000\nstate_dir = "/srv/smart"\n')
    monkeypatch.setenv("SMART_SETTINGS_FILE", str(file))
    monkeypatch.setenv("SMART_WEB_PORT", "9100")
    loaded = settings.load(stations=2)
    assert loaded.stations == 2
    assert loaded.web_port == 9100
    assert loaded.state_dir == Path("/srv/smart")
    assert loaded.station_ids == ["pt-1", "mt-1"]


def test_floor_larger_than_the_reference_shop_gets_generic_station_ids() -> None:
    assert settings.station_ids(8)[-3:] == ["sr-1", "st-7", "st-8"]


def test_unknown_setting_is_refused_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file = tmp_path / "smart.toml"
    file.write_text("statoins = 4\n")
    monkeypatch.setenv("SMART_SETTINGS_FILE", str(file))
    with pytest.raises(ValueError, match="statoins"):
        settings.load()


def test_config_show_masks_the_database_password(tmp_path: Path) -> None:
    env = dict(os.environ)
    env["SMART_DATABASE_URL"] = "postgresql://smart:s3cret-pw@db.example:5432/smart"
    env["SMART_SETTINGS_FILE"] = str(tmp_path / "absent.toml")
    env["SMART_STATE_DIR"] = str(tmp_path / "state")
    result = subprocess.run([SMART, "config", "show", "--json"], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["database_url"] == "**********"
    assert shown["state_dir"] == str(tmp_path / "state")
    assert "s3cret-pw" not in result.stdout + result.stderr
