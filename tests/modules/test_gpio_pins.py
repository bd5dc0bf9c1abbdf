"""The station's pin map: read from the settings, refused with the setting to fix when it cannot be wired."""

from __future__ import annotations

from pathlib import Path

import pydantic
import pytest

from smart import settings
from smart.modules.safety import pins


@pytest.fixture(autouse=True)
def _no_settings_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMART_SETTINGS_FILE", str(tmp_path / "absent.toml"))


def test_default_pin_map_is_a_pi5_hat_layout_clear_of_i2c_spi_and_uart() -> None:
    pin_map = pins.PinMap.from_settings(settings.load())
    used = {pin_map.pin(role) for role in pins.ROLES}
    assert len(used) == 6
    assert used.isdisjoint({0, 1, 2, 3, 7, 8, 9, 10, 11, 14, 15})
    assert pin_map.relay_active_high
    assert pin_map.estop_bounce_s == pytest.approx(0.02)


def test_pin_map_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMART_GPIO_RELAY_PIN", "21")
    monkeypatch.setenv("SMART_GPIO_RELAY_ACTIVE_HIGH", "false")
    pin_map = pins.PinMap.from_settings(settings.load())
    assert pin_map.relay == 21
    assert not pin_map.relay_active_high


def test_pin_map_reusing_a_pin_is_refused_naming_both_settings() -> None:
    with pytest.raises(pins.PinMapError) as refused:
        pins.PinMap.from_settings(settings.load(gpio_relay_pin=5))
    message = str(refused.value)
    assert "gpio_relay_pin = 5" in message
    assert "green lamp (gpio_green_pin)" in message


def test_pin_map_naming_the_hat_eeprom_pins_is_refused_naming_the_setting() -> None:
    with pytest.raises(pins.PinMapError, match=r"gpio_estop_pin = 1: the e-stop input needs a header GPIO"):
        pins.PinMap(green=5, amber=6, red=13, buzzer=19, relay=26, estop=1)


def test_pin_beyond_the_header_is_refused_by_the_settings_naming_the_setting() -> None:
    with pytest.raises(pydantic.ValidationError, match="gpio_buzzer_pin"):
        settings.load(gpio_buzzer_pin=40)
    with pytest.raises(pins.PinMapError, match=r"gpio_buzzer_pin = 40.*BCM 2–27"):
        pins.PinMap(green=5, amber=6, red=13, buzzer=40, relay=26, estop=17)
