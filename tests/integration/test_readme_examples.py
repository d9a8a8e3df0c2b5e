"""The README's automation examples are valid automations, and the one on `secmon_event` does
what it says with the payload secmon fires."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from homeassistant.components.automation.config import async_validate_config_item
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import async_mock_service

from custom_components.secmon.const import EVENT_SECURITY
from custom_components.secmon.link.proto import secmon_pb2
from custom_components.secmon.verdicts.records import VerdictRecord

README = Path(__file__).resolve().parents[2] / "README.md"
SECTION = "### Use cases and automation examples"


def _examples() -> list[dict[str, Any]]:
    text = README.read_text()
    section = text[text.index(SECTION) :]
    section = section[: section.index("\n#", len(SECTION))]
    blocks = re.findall(r"```yaml\n(.*?)```", section, flags=re.DOTALL)
    assert blocks, "no yaml example in the section"
    examples: list[dict[str, Any]] = []
    for block in blocks:
        examples.extend(yaml.safe_load(block))
    return examples


async def test_every_example_is_a_valid_automation(hass: HomeAssistant) -> None:
    examples = _examples()
    assert len(examples) >= 3
    for example in examples:
        assert await async_validate_config_item(hass, "", example) is not None, example["alias"]


async def test_the_unusual_porch_example_notifies_with_secmons_payload(hass: HomeAssistant) -> None:
    """Fired with what an announced verdict carries: an unusual one in the porch notifies, a
    usual one or one elsewhere does not."""
    (example,) = [e for e in _examples() if e["alias"] == "Unusual activity on the porch"]
    calls = async_mock_service(hass, "notify", "notify")
    assert await async_setup_component(hass, "automation", {"automation": [example]})
    await hass.async_block_till_done()

    def fire(zones: list[str], anomaly: float) -> None:
        record = VerdictRecord.from_message(
            secmon_pb2.Verdict(
                verdict_id="e1:final",
                event_id="e1",
                camera_id="front_door",
                risk_score=70,
                summary="Someone tries the porch door.",
                anomaly=anomaly,
                zones=zones,
            )
        )
        hass.bus.async_fire(EVENT_SECURITY, record.attributes(is_update=False))

    fire(["Driveway"], 0.9)
    fire(["Porch"], 0.2)
    await hass.async_block_till_done()
    assert calls == []
    fire(["Porch", "Driveway"], 0.9)
    await hass.async_block_till_done()
    assert [c.data for c in calls] == [
        {"title": "Unusual on the porch (high)", "message": "Someone tries the porch door."}
    ]
