"""The configuration scripts/develop gives Home Assistant: what a user expects, kept across runs."""

from __future__ import annotations

from pathlib import Path

from dev.ha_setup import REPO, write_config


def test_config_has_automations_and_notify_and_keeps_the_users_changes(tmp_path: Path) -> None:
    config, cameras = tmp_path / "config", tmp_path / "cameras"
    assert write_config(config, cameras, 18123)
    text = (config / "configuration.yaml").read_text(encoding="utf-8")
    for line in ("automation: !include automations.yaml", "notify:", "logbook:", "history:"):
        assert line in text.splitlines(), line
    assert str(cameras) in text and "server_port: 18123" in text
    assert (config / "automations.yaml").read_text(encoding="utf-8") == "[]\n"
    assert (config / "custom_components" / "secmon").resolve() == REPO / "custom_components/secmon"

    # The user adds an integration and an automation; the next run keeps both.
    mine = text + "\ninput_boolean:\n  away:\n"
    (config / "configuration.yaml").write_text(mine, encoding="utf-8")
    automation = "- id: '1'\n  alias: Mine\n  triggers: []\n  actions: []\n"
    (config / "automations.yaml").write_text(automation, encoding="utf-8")
    assert not write_config(config, cameras, 18123)
    assert (config / "configuration.yaml").read_text(encoding="utf-8") == mine
    assert (config / "automations.yaml").read_text(encoding="utf-8") == automation
    assert (config / "custom_components" / "secmon").resolve() == REPO / "custom_components/secmon"
