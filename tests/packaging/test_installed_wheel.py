"""mailpipe as users get it: a wheel installed into a fresh venv, run from a folder that holds its own
``plugins/`` and ``pipeline/`` (an ops team's drop-ins, say). Neither may shadow the installed packages.

No network: the wheel is built with ``--no-build-isolation`` from a copy of the sources, installed
with ``--no-index``, and the venv sees the test venv's dependencies through a ``.pth`` line added
after mailpipe is installed (so pip never sees the editable mailpipe of the test venv).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHADOW = "raise ImportError('the working directory shadowed the installed package: {name}')\n"
pytestmark = pytest.mark.slow


def run(args: list[str | Path], **kwargs: object) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=600, check=False, **kwargs)  # type: ignore[call-overload]
    assert done.returncode == 0, f"{' '.join(map(str, args))} failed:\n{done.stdout}\n{done.stderr}"
    return done  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv with mailpipe installed from its wheel; returns the venv's bin folder."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    for package in ("pipeline", "plugins"):
        shutil.copytree(ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    wheels = work / "wheels"
    run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", wheels, source])
    built = sorted(wheels.glob("mailpipe-*.whl"))
    assert len(built) == 1, built

    venv = work / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", venv])
    python = venv / "bin" / "python"
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            python,
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            "--find-links",
            wheels,
            "mailpipe",
        ]
    )
    site = Path(run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    (site / "test_venv_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv / "bin"


@pytest.fixture
def shadowing_folder(tmp_path: Path) -> Path:
    """A working directory whose plugins/ and pipeline/ fail loudly if anything imports them."""
    here = tmp_path / "ops"
    for name in ("plugins", "pipeline"):
        (here / name / "smtp").mkdir(parents=True)
        (here / name / "__init__.py").write_text(SHADOW.format(name=name))
        (here / name / "smtp" / "__init__.py").write_text(SHADOW.format(name=name))
    return here


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAILPIPE_", "PYTHON"))}
    return {**env, **extra}


def test_the_installed_packages_are_the_wheels_not_the_checkout(installed: Path, shadowing_folder: Path) -> None:
    code = "import pipeline, plugins, plugins.sendgrid; print(pipeline.__file__); print(plugins.sendgrid.__file__)"
    out = run([installed / "python", "-P", "-c", code], cwd=shadowing_folder, env=clean_env()).stdout.split()
    site = installed.parent / "lib"
    assert all(Path(p).is_relative_to(site) for p in out), out


def test_the_wheel_ships_every_file_the_code_opens_by_path(installed: Path) -> None:
    """Lua scripts, migration templates and demo data are not Python: package-data must name them."""
    package = Path(run([installed / "python", "-P", "-c", "import pipeline; print(pipeline.__file__)"]).stdout.strip()).parent

    def files(root: Path, folder: str, pattern: str) -> list[Path]:
        found = (root / folder).glob(pattern)
        return sorted(p.relative_to(root) for p in found if p.is_file() and "__pycache__" not in p.parts)

    for folder, pattern in (("state/lua", "**/*.lua"), ("db/migrations", "*.mako"), ("demo_data", "**/*")):
        source, shipped = files(ROOT / "pipeline", folder, pattern), files(package, folder, pattern)
        assert source and shipped == source, f"{folder}: missing from the wheel: {sorted(set(source) - set(shipped))}"


def test_providers_lists_the_builtin_providers_from_a_folder_with_its_own_plugins(
    installed: Path, shadowing_folder: Path
) -> None:
    done = run([installed / "mailpipe", "providers", "--json"], cwd=shadowing_folder, env=clean_env())
    names = {row["name"] for row in json.loads(done.stdout)}
    assert {"smtp", "sendgrid", "mailgun@eu", "ses", "gmail+workspace", "postmark", "zoho", "yahoo", "outlook"} <= names


def test_builtins_load_by_their_installed_location_even_with_the_folder_first_on_sys_path(
    installed: Path, shadowing_folder: Path
) -> None:
    """Without -P the folder's plugins/ would win the bare name; the manager imports ours by location,
    and refuses, naming the cause, when something already imported the stranger as ``plugins``."""
    (shadowing_folder / "plugins" / "__init__.py").write_text("")  # an importable package this time
    shutil.rmtree(shadowing_folder / "pipeline")
    env = clean_env(PYTHONPATH=str(shadowing_folder))
    loads = (
        "import sys; from pipeline.plugin_host.manager import build_plugin_manager, presets; pm = build_plugin_manager(); "
        "print(sys.modules['plugins.sendgrid'].__file__); print(sorted(presets(pm)))"
    )
    out = run([installed / "python", "-c", loads], cwd=shadowing_folder, env=env).stdout
    assert out.splitlines()[0].startswith(str(installed.parent / "lib")) and "sendgrid" in out

    stranger_first = "import plugins; from pipeline.plugin_host.manager import build_plugin_manager; build_plugin_manager()"
    done = subprocess.run(
        [installed / "python", "-c", stranger_first], cwd=shadowing_folder, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode != 0
    assert "shadows them" in done.stderr and "-P" in done.stderr and str(shadowing_folder) in done.stderr


def test_a_real_worker_starts_from_a_folder_with_its_own_plugins_and_pipeline(
    installed: Path, shadowing_folder: Path, write_config: Callable[..., Path]
) -> None:
    config = write_config()
    log = shadowing_folder / "worker.log"
    env = clean_env(MAILPIPE_CONFIG=str(config), **{k: v for k, v in os.environ.items() if k.startswith("TEST_PW_")})
    with log.open("wb") as sink:
        worker = subprocess.Popen(
            [installed / "mailpipe", "worker", "-p", "1", "-t", "1", "-Q", "send"],
            cwd=shadowing_folder,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and worker.poll() is None:
            text = log.read_text(errors="replace")
            if "Worker process is ready for action" in text:
                break
            time.sleep(0.2)
        text = log.read_text(errors="replace")
        assert "Worker process is ready for action" in text, "worker did not start; log tail:\n" + text[-3000:]
        assert "shadowed" not in text and "Traceback" not in text, text[-3000:]
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, 15)
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, 9)
                worker.wait(timeout=10)
