"""quality_scale.yaml answers every rule of Home Assistant's integration quality scale."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
QUALITY_SCALE = ROOT / "custom_components" / "secmon" / "quality_scale.yaml"
README = ROOT / "README.md"

# The rules of HA core's script/hassfest/quality_scale.py (ALL_RULES), by tier.
RULES = {
    "bronze": (
        "action-setup",
        "appropriate-polling",
        "brands",
        "common-modules",
        "config-flow",
        "config-flow-test-coverage",
        "dependency-transparency",
        "docs-actions",
        "docs-conditions",
        "docs-high-level-description",
        "docs-installation-instructions",
        "docs-removal-instructions",
        "docs-triggers",
        "entity-event-setup",
        "entity-unique-id",
        "has-entity-name",
        "runtime-data",
        "test-before-configure",
        "test-before-setup",
        "unique-config-entry",
    ),
    "silver": (
        "action-exceptions",
        "config-entry-unloading",
        "docs-configuration-parameters",
        "docs-installation-parameters",
        "entity-unavailable",
        "integration-owner",
        "log-when-unavailable",
        "parallel-updates",
        "reauthentication-flow",
        "test-coverage",
    ),
    "gold": (
        "devices",
        "diagnostics",
        "discovery",
        "discovery-update-info",
        "docs-data-update",
        "docs-examples",
        "docs-known-limitations",
        "docs-supported-devices",
        "docs-supported-functions",
        "docs-troubleshooting",
        "docs-use-cases",
        "dynamic-devices",
        "entity-category",
        "entity-device-class",
        "entity-disabled-by-default",
        "entity-translations",
        "exception-translations",
        "icon-translations",
        "reconfiguration-flow",
        "repair-issues",
        "stale-devices",
    ),
    "platinum": ("async-dependency", "inject-websession", "strict-typing"),
}


def _rules() -> dict[str, dict[str, str]]:
    data = yaml.safe_load(QUALITY_SCALE.read_text())
    rules: dict[str, dict[str, str]] = {
        name: value if isinstance(value, dict) else {"status": value}
        for name, value in data["rules"].items()
    }
    return rules


def test_every_rule_is_listed_and_nothing_else() -> None:
    every = {rule for tier in RULES.values() for rule in tier}
    assert set(_rules()) == every


def test_every_rule_is_done_or_exempt_with_a_reason() -> None:
    for name, rule in _rules().items():
        assert rule["status"] in ("done", "exempt"), name
        if rule["status"] == "exempt":
            assert len(rule.get("comment", "")) > 20, f"{name}: say why it is exempt"


def test_every_docs_rule_names_a_readme_section_that_exists() -> None:
    """A docs rule is done where the README has the section its comment names."""
    headings = {
        line.lstrip("#").strip() for line in README.read_text().splitlines() if line.startswith("#")
    }
    for name, rule in _rules().items():
        if not name.startswith("docs-") or rule["status"] != "done":
            continue
        comment = " ".join(rule.get("comment", "").split())
        named = re.findall(r'"([^"]+)"', comment.split("README, ", 1)[-1])
        assert comment.startswith("README, ") and named, f"{name}: name the README section"
        for section in named:
            assert any(h.startswith(section) for h in headings), f"{name}: no section {section!r}"
