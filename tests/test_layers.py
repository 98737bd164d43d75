"""The layout holds: imports point down, and no module grows past what one reader takes in.

Layers, top to bottom (a module may import its own layer and the ones below it):

    entry     wamgr.cli, wamgr.api, wamgr.web            what users call
    facade    wamgr.manager, runtime, routing, forwarding, inbound, outbound, local_tenants,
              credentials
    actors    wamgr.actors, wamgr.workers, wamgr.webhooks (sender)
    edges     wamgr.transport, wamgr.store                I/O: WhatsApp and PostgreSQL
    core      errors, status, clock, policy, config, events, metrics, qr, logging,
              transport.base (the Link protocol and its events: vocabulary, no I/O),
              webhooks.signing, webhooks.events           no I/O, no threads of their own
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "wamgr"

#: Longest module, in lines ("about 400"): one concept per module, as pykka's 100-400.
MAX_MODULE_LINES = 425

#: (module name prefix, layer); the longest matching prefix decides.
_LAYERS = [
    ("wamgr.cli", 4),
    ("wamgr.api", 4),
    ("wamgr.web", 4),
    ("wamgr.manager", 3),
    ("wamgr.runtime", 3),
    ("wamgr.routing", 3),
    ("wamgr.forwarding", 3),
    ("wamgr.inbound", 3),
    ("wamgr.outbound", 3),
    ("wamgr.local_tenants", 3),
    ("wamgr.credentials", 3),
    ("wamgr.actors", 2),
    ("wamgr.workers", 2),
    ("wamgr.webhooks", 2),
    ("wamgr.transport", 1),
    ("wamgr.store", 1),
    ("wamgr.transport.base", 0),
    ("wamgr.webhooks.signing", 0),
    ("wamgr.webhooks.events", 0),
    ("wamgr", 0),
]
_NAMES = {0: "core", 1: "edges", 2: "actors", 3: "facade", 4: "entry"}


def layer_of(module: str) -> int:
    """The layer of a wamgr module (by the longest prefix in the table)."""
    best = max(
        (p for p, _ in _LAYERS if module == p or module.startswith(p + ".")), key=len, default=None
    )
    assert best is not None, module
    return dict(_LAYERS)[best]


def _modules() -> list[tuple[str, Path]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found.append((".".join(parts), path))
    return found


def _imports(module: str, path: Path) -> set[str]:
    """The wamgr modules ``path`` imports, at run time or for type checking alike."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            out.add(name)
    return {name for name in out if name == "wamgr" or name.startswith("wamgr.")}


MODULES = _modules()


@pytest.mark.parametrize(("module", "path"), MODULES, ids=[m for m, _ in MODULES])
def test_imports_point_down(module: str, path: Path) -> None:
    if module == "wamgr":
        return  # the package re-exports public names lazily, by design from every layer
    mine = layer_of(module)
    upward = sorted(
        f"{name} ({_NAMES[layer_of(name)]})"
        for name in _imports(module, path)
        if name != "wamgr" and layer_of(name) > mine
    )
    assert not upward, f"{module} ({_NAMES[mine]}) imports a higher layer: {', '.join(upward)}"


@pytest.mark.parametrize(("module", "path"), MODULES, ids=[m for m, _ in MODULES])
def test_modules_stay_small(module: str, path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_MODULE_LINES, f"{module} has {lines} lines; split it by concept"


def test_the_table_knows_every_layer_boundary():
    assert layer_of("wamgr.transport.neonize.host") == 1
    assert layer_of("wamgr.webhooks.sender") == 2
    assert layer_of("wamgr.webhooks.signing") == 0
    assert layer_of("wamgr.cli.main") == 4
