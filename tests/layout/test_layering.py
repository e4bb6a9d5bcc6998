"""The layers of docs/architecture.md ("Packages and layers"): a package imports its own layer and below."""

from __future__ import annotations

from import_graph import import_graph

LAYERS: dict[int, tuple[str, ...]] = {
    0: ("errors", "models", "templates", "secrets"),
    1: ("config", "db"),
    2: ("state", "limits", "smtp", "observe", "plugin_host", "oauth", "archive"),
    3: ("context", "registry", "control", "stages", "feedback", "inbox", "bounces", "plugins"),
    4: ("runtime", "http", "cli", "bench", "demo", "demo_data", "submit", "client"),
}
RANK = {package: layer for layer, packages in LAYERS.items() for package in packages}

# Imports that go up a layer today. Each is a debt: fix it and delete its line (the test says so).
KNOWN_EXCEPTIONS = {
    ("pipeline.archive.coldstore", "pipeline.inbox.index"),  # the message index is Redis state: belongs in state/
    ("pipeline.archive.consumer", "pipeline.inbox.index"),
    ("pipeline.config.inbox", "pipeline.plugin_host.presets"),  # Limits/ProviderPreset are plain models
    ("pipeline.config.resolve", "pipeline.plugin_host.presets"),
    ("pipeline.config.schema", "pipeline.plugin_host.presets"),
    ("pipeline.db.localpg", "pipeline.smtp.netutil"),  # free_port: a network helper, not SMTP
    ("pipeline.observe.snapshot", "pipeline.registry.cache"),  # the status snapshot reads every store: a layer-3 view
    ("pipeline.plugin_host.fallbacks", "pipeline.feedback.replies"),  # the core reply classifier
    ("pipeline.plugin_host.hookspecs", "pipeline.feedback.webhooks"),  # the webhook request type
    ("pipeline.plugin_host.provider", "pipeline.feedback.webhooks"),
    ("pipeline.secrets", "pipeline.observe.redact"),
    ("pipeline.smtp.list_unsubscribe", "pipeline.feedback.tokens"),  # unsubscribe tokens are signed in feedback/
}


def package_of(module: str) -> str:
    parts = module.split(".")
    return "plugins" if parts[0] == "plugins" else parts[1] if len(parts) > 1 else parts[0]


def test_every_package_has_a_layer() -> None:
    packages = {package_of(m) for m in import_graph()} - {"pipeline"}
    unplaced = sorted(packages - RANK.keys())
    assert not unplaced, f"place {unplaced} in a layer here and in docs/architecture.md"


def test_no_package_imports_a_higher_layer() -> None:
    upward = set()
    for module, targets in import_graph().items():
        for target in targets:
            source, dest = package_of(module), package_of(target)
            if "pipeline" in (source, dest) or source not in RANK or dest not in RANK:
                continue
            if RANK[dest] > RANK[source]:
                upward.add((module, target))
    new = sorted(upward - KNOWN_EXCEPTIONS)
    assert not new, "imports from a higher layer (see docs/architecture.md): " + "; ".join(f"{a} → {b}" for a, b in new)
    fixed = sorted(KNOWN_EXCEPTIONS - upward)
    assert not fixed, f"no longer imported, delete from KNOWN_EXCEPTIONS: {fixed}"


def test_the_documented_table_names_the_same_layers() -> None:
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "architecture.md").read_text()
    for layer, packages in LAYERS.items():
        row = next((line for line in doc.splitlines() if line.startswith(f"| {layer} ")), "")
        assert all(f"`{p}`" in row for p in packages), f"layer {layer} in docs/architecture.md lists {packages}"
