"""Write the app's OpenAPI schema to ``docs/openapi.json``: ``python -m pipeline.http.openapi [PATH]``.

The schema does not depend on the config, so a minimal one builds the app (no connection is made).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pipeline.config import parse_config
from pipeline.http.app import create_app

DOC = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
MINIMAL = """
[broker]
url = "stub://"
[redis]
url = "redis://127.0.0.1:1/0"
[[accounts]]
name = "a"
host = "127.0.0.1"
from_email = "a@example.com"
[default]
account = "a"
"""


def schema() -> dict[str, Any]:
    return create_app(parse_config(MINIMAL, Path("openapi.toml"))).openapi()


def render() -> str:
    return json.dumps(schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    target = Path(argv[0]) if argv else DOC
    target.write_text(render(), encoding="utf-8")
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
