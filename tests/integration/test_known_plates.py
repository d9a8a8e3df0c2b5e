"""Known licence plates: an option (`PLATE = NAME` lines), validated and normalised as the sidecar
reads plates, sent to the sidecar in the stream's config (Hello); an emptied option empties the
sidecar's list."""

from __future__ import annotations

from typing import Any

import pytest
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.secmon.const import (
    CONF_BATCH_IDLE,
    CONF_BATCH_WINDOW,
    CONF_CLEAR_DELAY,
    CONF_DEBOUNCE,
    CONF_ENRICHERS,
    CONF_FAST_PATH_CONFIDENCE,
    CONF_KNOWN_PLATES,
    CONF_POLLING,
    CONF_QUEUE_BOUND,
    CONF_THRESHOLD,
)
from custom_components.secmon.context.plates import (
    KnownPlatesError,
    format_known_plates,
    normalize_plate,
    parse_known_plates,
)

FORM: dict[str, Any] = {
    CONF_THRESHOLD: 0.5,
    CONF_DEBOUNCE: 0.2,
    CONF_POLLING: False,
    CONF_CLEAR_DELAY: 30,
    CONF_QUEUE_BOUND: 1000,
    CONF_BATCH_WINDOW: 90,
    CONF_BATCH_IDLE: 30,
    CONF_FAST_PATH_CONFIDENCE: 0.9,
}


def test_plates_are_normalised_as_the_sidecar_reads_them() -> None:
    assert normalize_plate("ab12 cde") == "AB12CDE"
    assert normalize_plate("B-MW·123.4") == "BMW1234"
    assert normalize_plate("ABCDEF") is None  # no digit
    assert normalize_plate("A1") is None  # too short
    assert normalize_plate("AB12CDE<|im_start|>") is None
    text = "\n ab12 cde =  Anna's   car \n\nXY-987 = Delivery van\n"
    plates = parse_known_plates(text)
    assert plates == {"AB12CDE": "Anna's car", "XY987": "Delivery van"}
    assert parse_known_plates(format_known_plates(plates)) == plates


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("AB12CDE", "plate_line"),
        ("AB12CDE =   ", "plate_line"),
        ("hello = Anna", "plate_invalid"),
        ("AB12CDE = " + "x" * 65, "plate_name_too_long"),
        ("AB12CDE = Anna\nab-12 cde = Ben", "plate_duplicate"),
        ("\n".join(f"AB{n:04d} = car {n}" for n in range(101)), "plates_too_many"),
    ],
)
def test_bad_lines_are_refused(text: str, reason: str) -> None:
    with pytest.raises(KnownPlatesError) as err:
        parse_known_plates(text)
    assert err.value.reason == reason


async def test_known_plates_option_reaches_the_stream_config(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """Stored normalised, shown again as text, in the config the stream sends with Hello."""
    entry = init_integration
    assert entry.runtime_data.stream.config.known_plates_set
    assert list(entry.runtime_data.stream.config.known_plates) == []

    result = await hass.config_entries.options.async_init(entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {**FORM, CONF_KNOWN_PLATES: "ab12 cde = Anna's car\nnot a plate = x"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_KNOWN_PLATES: "plate_invalid"}
    assert result["description_placeholders"]["line"] == "not a plate"

    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {**FORM, CONF_KNOWN_PLATES: "ab12 cde = Anna's car\nXY-987 = Van"}
    )
    assert result["type"] is FlowResultType.FORM and result["step_id"] == "context"
    result = await hass.config_entries.options.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert entry.options[CONF_KNOWN_PLATES] == {"AB12CDE": "Anna's car", "XY987": "Van"}
    config = entry.runtime_data.stream.config
    assert config.known_plates_set
    assert [(p.plate, p.name) for p in config.known_plates] == [
        ("AB12CDE", "Anna's car"),
        ("XY987", "Van"),
    ]

    result = await hass.config_entries.options.async_init(entry.entry_id)
    fields = {str(key): key for key in result["data_schema"].schema}
    suggested = fields[CONF_KNOWN_PLATES].description["suggested_value"]
    assert suggested == "AB12CDE = Anna's car\nXY987 = Van"

    # Emptied: the sidecar is told to forget them.
    result = await hass.config_entries.options.async_configure(result["flow_id"], FORM)
    assert result["type"] is FlowResultType.FORM and result["step_id"] == "context"
    result = await hass.config_entries.options.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert entry.options[CONF_KNOWN_PLATES] == {}
    config = entry.runtime_data.stream.config
    assert config.known_plates_set and list(config.known_plates) == []


async def test_enrichers_switched_off_in_the_options_reach_the_stream_config(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """Every enricher is wanted by default; those left out of the option are sent as off."""
    entry = init_integration
    config = entry.runtime_data.stream.config
    assert config.enrichers_off_set and list(config.enrichers_off) == []

    result = await hass.config_entries.options.async_init(entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {**FORM, CONF_ENRICHERS: ["plates", "attributes"]}
    )
    assert result["type"] is FlowResultType.FORM and result["step_id"] == "context"
    result = await hass.config_entries.options.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    config = entry.runtime_data.stream.config
    assert config.enrichers_off_set
    assert list(config.enrichers_off) == ["caption", "pose", "depth"]
