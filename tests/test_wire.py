"""Broker message encoding: orjson on the wire, readable by and from Dramatiq's own JSON encoder."""

from __future__ import annotations

import dramatiq
import pytest
from dramatiq.encoder import JSONEncoder
from dramatiq.errors import DecodeError

from pipeline.runtime.wire import OrjsonEncoder

ITEM = '{"event":{"event_id":"e-1","to":"ana@example.com","subject":"Olá \\"quoted\\"\\r\\n"}}'


def _message_data() -> dict[str, object]:
    message = dramatiq.Message(
        queue_name="mailpipe.route",
        actor_name="mailpipe_route",
        args=({"v": 1, "items": [ITEM, "ünï\u2028"]},),
        kwargs={},
        options={"redis_message_id": "abc", "eta": 1_700_000_000_000},
    )
    data = dict(message.asdict())
    data["args"] = list(data["args"])  # JSON has no tuples: both encoders give a list back
    return data


def test_what_orjson_writes_dramatiq_json_reads_and_back() -> None:
    data = _message_data()
    ours, theirs = OrjsonEncoder(), JSONEncoder()
    assert theirs.decode(ours.encode(data)) == data
    assert ours.decode(theirs.encode(data)) == data
    assert ours.decode(ours.encode(data))["args"][0]["items"][0] == ITEM


def test_values_orjson_refuses_still_encode() -> None:
    big = {"n": 2**70, "k": {1: "int key"}}
    assert JSONEncoder().decode(OrjsonEncoder().encode(big)) == {"n": 2**70, "k": {"1": "int key"}}


@pytest.mark.parametrize("garbage", [b"{not json", b"\xff\xfe", b""])
def test_garbage_raises_dramatiqs_decode_error(garbage: bytes) -> None:
    with pytest.raises(DecodeError):
        OrjsonEncoder().decode(garbage)
