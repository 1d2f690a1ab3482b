"""The flooder of the ``wflood`` workload, a process of its own: raw frames as fast as its
socket takes them (``python -m roomstreams.bench.flooder URL TOKEN MODE SECONDS``); prints
what it sent and what it was told as one JSON line."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from .stats import rnd


async def _flood(url: str, token: str, mode: str, seconds: float) -> dict[str, Any]:
    import websockets
    from websockets.exceptions import ConnectionClosed

    tiny = b"\x02\x01\x00\x02{}x"
    big = b"\x02\x01\x00\x02{}" + b"x" * (90 * 1024)
    sent = errors = 0
    codes: dict[str, int] = {}
    close_code = None
    closed_after = None
    started = time.monotonic()
    async with websockets.connect(f"{url}/rtc?access_token={token}", compression=None) as ws:
        while json.loads(await ws.recv()).get("type") != "joined":
            pass

        async def read() -> None:
            nonlocal errors
            async for msg in ws:
                if isinstance(msg, str):
                    f = json.loads(msg)
                    if f.get("type") == "error":
                        errors += 1
                        codes[f["code"]] = codes.get(f["code"], 0) + 1

        reader = asyncio.create_task(read())
        i = 0
        try:
            # a deadline, not a check between sends: a throttled flooder's send waits for
            # its socket, which the gateway drains at a tenth of the rate
            async with asyncio.timeout(seconds - (time.monotonic() - started)):
                while True:
                    i += 1
                    pick = mode if mode != "mixed" else ("tiny", "streams", "big", "tiny")[i % 4]
                    if pick == "tiny":
                        await ws.send(tiny)
                    elif pick == "big":
                        await ws.send(big)
                    else:
                        sid = f"fl-{i}"
                        header = {"type": "header", "stream_id": sid, "topic": "flood"}
                        await ws.send(json.dumps({**header, "timestamp": 1}))
                        await ws.send(json.dumps({"type": "trailer", "stream_id": sid}))
                        sent += 1
                    sent += 1
        except TimeoutError:
            pass
        except ConnectionClosed as exc:
            close_code = exc.rcvd.code if exc.rcvd else None
            closed_after = rnd(time.monotonic() - started, 2)
        reader.cancel()
        # gone at once: a close handshake would wait behind the backlog the gateway reads
        # at the throttled rate (the flood close, 10,000 frames into a spell, comes ~50 s in)
        if ws.transport is not None:
            ws.transport.abort()
    elapsed = time.monotonic() - started
    return {
        "frames_sent": sent,
        "frames_per_s": rnd(sent / elapsed, 1),
        "errors": errors,
        "error_codes": codes,
        "close_code": close_code,
        "closed_after_s": closed_after,
    }


if __name__ == "__main__":
    url_, token_, mode_, secs = sys.argv[1:5]
    print(json.dumps(asyncio.run(_flood(url_, token_, mode_, float(secs)))))
