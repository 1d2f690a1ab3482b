"""The README's example runs as printed (against this suite's system instead of
`roomstreams up`: only the URL and the key pair are swapped)."""

from __future__ import annotations

import re
import subprocess
import sys

from .conftest import API_KEY, API_SECRET, ROOT, System


def test_readme_example_runs(system: System) -> None:
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
    assert blocks, "README has no python example"
    code = blocks[0]
    for old, new in (
        ("ws://127.0.0.1:7880", system.urls[0]),
        ('"devkey"', repr(API_KEY)),
        ('"devsecret-change-me-devsecret-change-me"', repr(API_SECRET)),
    ):
        assert old in code, f"the README example no longer contains {old}"
        code = code.replace(old, new)
    # a room of its own, so that it does not meet other tests' participants
    code = code.replace('room="demo"', 'room="readme-example"')
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "alice says: token by token"
