"""Enrichment through a real `python -m sidecar` (tiny detector, tiny LLM, tiny random enrichment
models, real PP-OCR): verdicts carry what ran and what it found, GetStatus shows the zoo within its
budget, and with enrichment off the verdicts still go out."""

from __future__ import annotations

import asyncio
import os

from conftest import SidecarFactory
from test_verdict_stream import client, frame, hello, status_of

from sidecar.detection.models.coco_labels import COCO_LABELS
from sidecar.proto import secmon_pb2 as pb

ENRICHERS = ["caption", "attributes", "plates", "pose", "depth"]


async def test_verdicts_carry_enrichment_and_the_zoo_reports_its_budget(
    sidecar_factory: SidecarFactory,
) -> None:
    process = sidecar_factory(
        "--threshold", "0.05", "--enrich-memory-budget", "2048", "--enrich-memory-margin", "64",
        "--enrich-fast-path-time-s", "60",
    )
    await process.wait_serving()
    async with client(process) as c:
        message = hello(
            idle_seconds=1.5, window_seconds=30, fast_path_confidence=0.01,
            fast_path_labels=list(COCO_LABELS),
        )
        message.config.known_plates.add(plate="AB12CDE", name="Anna")
        message.config.known_plates_set = True
        c.send(hello=message)
        for i in range(3):
            c.send(frame=frame(i))
        await c.wait_results(3)
        verdicts = {}
        while len(verdicts) < 2:
            v = await c.verdict(180)
            verdicts[v.verdict_id] = v
        for v in verdicts.values():
            assert [r.name for r in v.enrichers] == ENRICHERS
            assert {r.status for r in v.enrichers} <= {"ran", "skipped"}, v.enrichers
            assert v.enrichment_ms > 0
        final = next(v for v in verdicts.values() if not v.fast_path)
        assert {r.name: r.status for r in final.enrichers}["attributes"] == "ran"
        assert 1 <= len(final.objects) <= 6
        assert [a.name for a in final.scene_attributes] == ["lighting", "weather"]
        for obj in final.objects:
            assert obj.frame_id in final.frame_ids
            if obj.label == "person":
                assert obj.identity.startswith("person ") and obj.visits_24h >= 1
                assert [a.name for a in obj.attributes] == ["clothing", "carrying", "face"]
        c.send(verdict_ack=pb.VerdictAck(verdict_ids=list(verdicts)))

    status = await status_of(process)
    zoo = status.enrichment
    assert list(zoo.enrichers) == ENRICHERS
    assert zoo.device == "cpu" and zoo.budget_bytes == 2048 * 1024 * 1024
    assert zoo.margin_bytes == 64 * 1024 * 1024
    assert 0 < zoo.high_water_bytes <= zoo.budget_bytes - zoo.margin_bytes
    assert zoo.loads >= 1 and zoo.batches_enriched == 2
    assert zoo.enrichment_latency.count == 2
    models = {m.name: m for m in zoo.models}
    assert set(models) == set(ENRICHERS)
    assert models["attributes"].loaded and models["attributes"].weights_bytes > 0
    assert models["attributes"].spec == "random:tiny"
    assert process.terminate() == 0


async def test_with_enrichment_off_verdicts_still_go_out(sidecar_factory: SidecarFactory) -> None:
    process = sidecar_factory("--threshold", "0.05", "--enrich", "none")
    await process.wait_serving()
    async with client(process) as c:
        c.send(hello=hello(idle_seconds=1.0, window_seconds=30, fast_path_disabled=True))
        c.send(frame=frame(0))
        verdict = await c.verdict(120)
        assert not verdict.enrichers and not verdict.objects
        c.send(verdict_ack=pb.VerdictAck(verdict_ids=[verdict.verdict_id]))
    status = await status_of(process)
    assert not status.HasField("enrichment")
    assert process.terminate() == 0


def test_an_enrichment_model_spec_that_cannot_work_stops_the_start(tiny_model_dir: object) -> None:
    from sidecar_harness import run_sidecar_to_exit

    result = run_sidecar_to_exit(
        ["--detector", str(tiny_model_dir), "--device", "cpu",
         "--enrich-depth-model", "/nonexistent/depth"]
    )
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and "not a model directory" in errors[0], result.stderr


async def test_a_client_switches_enrichers_off_for_its_own_batches(
    sidecar_factory: SidecarFactory,
) -> None:
    """StreamConfig.enrichers_off: the client's batches report those enrichers "off" and run the
    rest; an unknown name is ignored."""
    process = sidecar_factory("--threshold", "0.05", "--enrich-memory-budget", "2048")
    await process.wait_serving()
    async with client(process) as c:
        message = hello(idle_seconds=1.5, window_seconds=30)
        message.config.enrichers_off.extend(["caption", "pose", "depth", "no-such-enricher"])
        message.config.enrichers_off_set = True
        c.send(hello=message)
        for i in range(2):
            c.send(frame=frame(i))
        await c.wait_results(2)
        v = await c.verdict(180)
        c.send(verdict_ack=pb.VerdictAck(verdict_ids=[v.verdict_id]))
    runs = {r.name: r.status for r in v.enrichers}
    assert runs["caption"] == runs["pose"] == runs["depth"] == "off"
    assert runs["attributes"] in {"ran", "skipped"} and runs["plates"] in {"ran", "skipped"}
    assert not v.caption
    assert process.terminate() == 0


async def test_the_default_budget_is_measured_once_the_pinned_models_are_loaded(
    sidecar_factory: SidecarFactory,
) -> None:
    """Without --enrich-memory-budget the zoo measures its budget when the detector and the LLM
    are loaded (the server is ready), before any batch loads an enrichment model."""
    process = sidecar_factory("--threshold", "0.05", "--enrich-memory-margin", "64")
    await process.wait_serving()
    zoo = (await status_of(process)).enrichment
    for _ in range(600):  # measured right after SERVING: a busy machine may take a while
        if zoo.budget_bytes:
            break
        await asyncio.sleep(0.1)
        zoo = (await status_of(process)).enrichment
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert 64 * 1024 * 1024 < zoo.budget_bytes <= total
    assert zoo.margin_bytes == 64 * 1024 * 1024
    assert zoo.loads == 0 and not any(m.loaded for m in zoo.models)
    assert process.terminate() == 0
