"""The services' raw command path (roomstreams._redisio.execute and its command builders)
against a real server: replies as redis-py's own commands would give them."""

from __future__ import annotations

import pytest

from roomstreams._redisio import (
    client,
    execute,
    parse_xread,
    xadd_command,
    xread,
    xread_command,
)


def test_parse_xread_takes_both_protocols() -> None:
    resp3 = {b"k": [[b"1-0", [b"a", b"1", b"b", b"2"]]]}
    resp2 = [[b"k", [[b"1-0", [b"a", b"1", b"b", b"2"]]]]]
    want = [(b"k", [(b"1-0", {b"a": b"1", b"b": b"2"})])]
    assert parse_xread(resp3) == parse_xread(resp2) == want
    assert parse_xread(None) == []


def test_commands_are_built_in_redis_order() -> None:
    assert xadd_command("k", {"a": b"1"}, maxlen=10) == (
        "XADD",
        "k",
        "MAXLEN",
        "~",
        10,
        "*",
        "a",
        b"1",
    )
    cmd = xread_command({"k1": "0-0", "k2": b"5-1"}, block=100, count=7)
    assert cmd == ("XREAD", "COUNT", 7, "BLOCK", 100, "STREAMS", "k1", "k2", "0-0", b"5-1")


async def test_execute_pipelines_and_reads_back(redis_url: str) -> None:
    r = client(redis_url, "test-execute")
    try:
        await r.delete("rs-test:x", "rs-test:h")
        replies = await execute(
            r,
            [
                xadd_command("rs-test:x", {"f": "v1"}, maxlen=100),
                xadd_command("rs-test:x", {"f": b"v2"}, maxlen=100),
                ("HSET", "rs-test:h", "a", "1", "b", "2"),
            ],
        )
        assert isinstance(replies[0], bytes) and replies[2] == 2
        got = await xread(r, {"rs-test:x": "0-0"}, block=None, count=10)
        assert [f for _id, f in got[0][1]] == [{b"f": b"v1"}, {b"f": b"v2"}]
        assert got[0][1][0][0] == replies[0]
        # an error reply fails the call and leaves the connection usable for the next
        with pytest.raises(Exception, match="WRONGTYPE"):
            await execute(r, [("XADD", "rs-test:h", "*", "f", "v")])
        assert await xread(r, {"rs-test:x": replies[1]}, block=None, count=10) == []
    finally:
        await r.delete("rs-test:x", "rs-test:h")
        await r.aclose()
