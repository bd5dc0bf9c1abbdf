"""The stack light follows the alert board on a running station, wherever AlertBroadcast runs.

``smart node run`` listens on the station's alert subject (:func:`smart.node.run.follow_alerts`)
and lights the tower on gpiozero pins (here gpiozero's MockFactory, as on a simulated station):
an open critical alert turns it red and sounds the buzzer until acknowledged, clearing it puts
the light back, and a refused gate turns it red too.
"""

from __future__ import annotations

from pathlib import Path

from smart.contracts import facts as f
from smart.keys import KeyStore
from smart.modules.safety import gpio, pins
from smart.node.run import follow_alerts
from smart.runtime.background import BackgroundFloor
from tests.node.conftest import Hub, eventually
from tests.node.test_job_walkthrough import AT, PENETRANT_SHOP, bench

PIN_MAP = pins.PinMap(green=5, amber=6, red=13, buzzer=19, relay=26, estop=17)


async def test_an_open_alert_lights_the_tower_by_severity_and_a_clear_puts_it_back(
    nats_floor: BackgroundFloor, hub: Hub, keys: KeyStore, tmp_path: Path
) -> None:
    hardware = gpio.simulated(PIN_MAP, lease_s=5, on_estop=lambda pressed: None)

    def level(role: pins.Role) -> bool:
        return bool(hardware.factory.pin(PIN_MAP.pin(role)).state)

    def lamps() -> list[str]:
        return [colour for colour in ("green", "amber", "red") if level(colour)]

    try:
        async with bench(nats_floor, hub, keys, tmp_path, "pt-1", "penetrant", PENETRANT_SHOP) as pt:
            assert pt.runtime.agent.connection is not None
            await follow_alerts(pt.runtime.agent.connection, "pt-1", hardware)
            assert lamps() == ["amber"]  # nothing allowed yet
            event = f.Event(action="alert", at=AT, station="pt-1", person="op-7")

            warned = await pt.module(
                "alert-broadcast",
                "raise",
                event,
                {"severity": "warning", "source": "qa", "message": "SPC drift"},
            )
            critical = await pt.module(
                "alert-broadcast",
                "raise",
                event,
                {"severity": "critical", "source": "maintenance", "message": "UV-A lamp below 1000 µW/cm²"},
            )
            await eventually(lambda: lamps() == ["red"] and level("buzzer"), what="red and sounding")

            await pt.module("alert-broadcast", "ack", event, {"id": critical["effects"]["alert"]})
            await eventually(lambda: lamps() == ["red"] and not level("buzzer"), what="red, quiet")

            await pt.module("alert-broadcast", "clear", event, {"id": critical["effects"]["alert"]})
            await eventually(lambda: lamps() == ["amber"], what="the warning's amber")
            await pt.module("alert-broadcast", "clear", event, {"id": warned["effects"]["alert"]})

            await pt.module("alert-broadcast", "gate", event, {"outcome": "deny"})
            await eventually(lambda: lamps() == ["red"], what="red on a refused gate")
    finally:
        hardware.close()
