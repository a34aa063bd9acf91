"""Pure logic of the workers: envelopes, UbiBot parsing, backoff, DLQ subjects, secrets."""

from __future__ import annotations

import json
import os

import pytest

from afasa_ops.platform import events, secrets
from afasa_ops.platform.ubibot import UbibotError, parse_channels
from afasa_ops.workers.runtime import RuntimeOptions


def test_envelope_round_trip_and_rejections() -> None:
    ev = events.new_event(
        events.REPORT_REQUESTED,
        "4f1c0d8e-0b7a-4c1e-9a55-3f2f7e0c1a10",
        {"report_id": "r"},
        producer="p",
        correlation_id="c",
    )
    back = events.Envelope.from_bytes(ev.to_bytes())
    assert back == ev and back.subject == "afasa.report.requested"
    assert set(json.loads(ev.to_bytes())) == {
        "event_id",
        "event_type",
        "tenant_id",
        "occurred_at",
        "producer",
        "data",
        "correlation_id",
    }
    for bad, says in [
        (b"{nope", "not JSON"),
        (b"[]", "not a JSON object"),
        (b'{"event_id":"1","event_type":"x","tenant_id":"t","data":{}}', "lacks data"),
        (
            b'{"event_id":"1","event_type":"x","tenant_id":"not-a-uuid","data":{"a":1}}',
            "not a UUID",
        ),
    ]:
        with pytest.raises(events.EnvelopeError, match=says):
            events.Envelope.from_bytes(bad)


def test_derived_event_ids_are_stable_and_dlq_subjects_keep_the_name() -> None:
    assert events.derived_event_id("report.ready", "r1") == events.derived_event_id(
        "report.ready", "r1"
    )
    assert events.derived_event_id("report.ready", "r1") != events.derived_event_id(
        "report.ready", "r2"
    )
    assert events.dlq_subject("afasa.report.requested") == "afasa.dlq.report.requested"


def test_backoff_schedule_repeats_its_last_value() -> None:
    opts = RuntimeOptions(nats_url="nats://x", backoff_s=[1.0, 5.0])
    assert [opts.backoff(n) for n in (1, 2, 3, 9)] == [1.0, 5.0, 5.0, 5.0]


def test_ubibot_parsing_decodes_nested_json_and_checks_result() -> None:
    body = json.dumps(
        {
            "result": "success",
            "channels": [
                {
                    "channel_id": 12,
                    "name": "a",
                    "last_entry_date": "2026-11-20 10:00:00",
                    "last_values": '{"field1": {"value": 3}}',
                    "field1": "x",
                },
                {"channel_id": "12", "name": "dup"},
            ],
        }
    )
    channels = parse_channels(body)
    assert len(channels) == 1 and channels[0].name == "dup"  # de-duplicated: one row per id
    first = parse_channels(
        json.dumps({"result": "success", "channels": [json.loads(body)["channels"][0]]})
    )[0]
    assert first.channel_id == "12" and first.metadata["last_values"] == {"field1": {"value": 3}}
    assert "field1" not in first.metadata and first.last_entry_date is not None
    with pytest.raises(UbibotError, match="request_too_fast") as info:
        parse_channels(json.dumps({"result": "error", "errorCode": "request_too_fast"}))
    assert info.value.retryable is True
    with pytest.raises(UbibotError, match="no channels list"):
        parse_channels(json.dumps({"result": "success"}))


def test_secret_blob_layout() -> None:
    key = os.urandom(32)
    blob = secrets.encrypt(key, "hello")
    assert len(blob) == 12 + len("hello") + 16
    assert secrets.decrypt(key, blob) == "hello"
    assert secrets.encrypt(key, "hello")[:12] != blob[:12]  # a fresh nonce every time
