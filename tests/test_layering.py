"""The package's layers import only downwards (docs/DEVELOPING.md): core <- theory, empirical <- compare <- cli."""

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "earlyphase"

FORBIDDEN = {
    "core": {"theory", "empirical", "compare", "cli"},
    "theory": {"empirical", "compare", "cli"},
    "empirical": {"theory", "compare", "cli"},
    "compare": {"cli"},
}


def imported_layers(path: Path) -> set[tuple[str, int]]:
    """(layer, line) of every earlyphase.LAYER module that ``path`` imports, at any depth of its code."""
    module = path.relative_to(PACKAGE.parent).with_suffix("").parts
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = module[: len(module) - node.level]
                names = [".".join((*base, *(node.module.split(".") if node.module else ())))]
            else:
                names = [node.module or ""]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "earlyphase" and len(parts) > 1:
                found.add((parts[1], node.lineno))
    return found


def layer_violations(layer: str) -> list[str]:
    return [
        f"{path.relative_to(PACKAGE.parent)}:{line} imports earlyphase.{imported}"
        for path in sorted((PACKAGE / layer).rglob("*.py"))
        for imported, line in sorted(imported_layers(path))
        if imported in FORBIDDEN[layer]
    ]


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_only_what_it_may(layer):
    assert layer_violations(layer) == []


def test_the_check_sees_every_kind_of_import(tmp_path, monkeypatch):
    """The parser must catch absolute, from- and relative imports, also inside functions."""
    fake = tmp_path / "earlyphase"
    (fake / "core").mkdir(parents=True)
    (fake / "core" / "bad.py").write_text(
        "import earlyphase.theory.uv\n"
        "def f():\n    from earlyphase.empirical import models\n"
        "from ..compare import tables\n"
        "from earlyphase.core import grid\n"
    )
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    assert sorted(v.split(" imports ")[1] for v in layer_violations("core")) == [
        "earlyphase.compare",
        "earlyphase.empirical",
        "earlyphase.theory",
    ]
