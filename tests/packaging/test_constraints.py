"""constraints.txt pins every dependency pyproject.toml names, at a version its bounds allow.

ops/bootstrap.sh installs with ``-c constraints.txt``: a dependency added to pyproject.toml without
regenerating the file would float to whatever the index has that day, and a pin outside the bounds
would make the install fail. Both are caught here, naming the package and the command to run.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
REGENERATE = "regenerate constraints.txt from the tested venv (the command is in its header)"


def pins() -> dict[str, Version]:
    out: dict[str, Version] = {}
    for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([^\s;]+)", line)
        assert match, f"constraints.txt: {line!r} is not name==version"
        out[canonicalize_name(match.group(1))] = Version(match.group(2))
    return out


def requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    names = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        names += extra
    return [Requirement(r) for r in names]


def test_every_dependency_is_pinned_within_its_bounds() -> None:
    pinned = pins()
    missing = sorted({r.name for r in requirements() if canonicalize_name(r.name) not in pinned})
    assert missing == [], f"not in constraints.txt: {', '.join(missing)}; {REGENERATE}"
    outside = [
        f"{r.name} {pinned[canonicalize_name(r.name)]} (needs {r.specifier})"
        for r in requirements()
        if not r.specifier.contains(pinned[canonicalize_name(r.name)], prereleases=True)
    ]
    assert outside == [], f"pinned outside pyproject's bounds: {'; '.join(outside)}; {REGENERATE}"


def test_the_lock_holds_no_editable_or_local_installs_and_not_mailpipe_itself() -> None:
    text = (ROOT / "constraints.txt").read_text(encoding="utf-8")
    assert "mailpipe" not in pins()
    assert not re.search(r"^\s*(-e|.+ @ )", text, re.MULTILINE)


def test_the_pins_of_the_extras_dramatiq_needs_are_there() -> None:
    """dramatiq[redis] pulls redis in through the extra: the pin must cover it too."""
    assert {"dramatiq", "redis", "hiredis", "pika"} <= set(pins())
