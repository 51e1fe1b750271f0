"""The rules of the house, checked: which way imports point, what is pure, the public names,
and where errors live. ``docs/architecture.md`` explains the layers these tests enforce."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import orchestrator
from orchestrator.errors import OrchestratorError
from tests.support.paths import REPO

PACKAGES = ("orchestrator", "actors", "store", "web", "server", "simulator", "commands")

#: Modules of ``orchestrator`` that are not leaves (everything else in it is one).
NOT_LEAVES = {
    "orchestrator": "public",  # the lazy re-exports of the package's public names
    "orchestrator.__main__": "entry",
    "orchestrator.service": "service",
    "orchestrator.customer_client": "adapters",
    "orchestrator.peers_client": "adapters",
    "orchestrator.logs": "logs",
}

#: layer -> the layers its modules may import (its own always included).
ALLOWED: dict[str, set[str]] = {
    "simulator": {"simulator.defaults"},
    "simulator.defaults": set(),
    "leaves": {"simulator.defaults"},
    "actors": {"leaves"},
    "store": {"leaves"},
    "adapters": {"leaves"},  # orchestrator.carriers, .customer_client: implement the ports
    "metrics": {"leaves"},
    "logs": {"metrics", "leaves"},
    "service": {"actors", "leaves"},
    "web": {"leaves", "adapters", "metrics"},
    "server": {
        "web",
        "service",
        "actors",
        "store",
        "adapters",
        "metrics",
        "logs",
        "leaves",
        "simulator",
        "simulator.defaults",
    },
    "commands": {
        "server",
        "web",
        "service",
        "actors",
        "store",
        "adapters",
        "metrics",
        "logs",
        "leaves",
        "simulator",
        "simulator.defaults",
    },
    "public": {"leaves", "service"},
    "entry": {"commands"},
}

#: Pure modules: no event loop, no network, no database.
IMPURE = (
    "trio",
    "httpx",
    "sqlalchemy",
    "sqlmodel",
    "quart",
    "quart_trio",
    "hypercorn",
    "psycopg",
    "requests",
)
PURE_BEYOND_LEAVES = {
    "actors.referee",
    "actors.race",
    "orchestrator.carriers.plivo.webhooks",
    "orchestrator.carriers.plivo.signature",
    "orchestrator.carriers.plivo.urls",
    "orchestrator.carriers.plivo.xml",
}


def layer_of(module: str) -> str:
    top = module.split(".")[0]
    if top == "orchestrator":
        if module in NOT_LEAVES:
            return NOT_LEAVES[module]
        if module.startswith("orchestrator.carriers"):
            return "adapters"
        if module.startswith("orchestrator.metrics"):
            return "metrics"
        return "leaves"
    if module == "simulator.defaults":
        return "simulator.defaults"
    return top


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str
    line: int


def modules(root: Path = REPO, scan: tuple[str, ...] = PACKAGES) -> Iterator[tuple[str, Path]]:
    for package in scan:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            yield ".".join(parts), path


def imports_of(module: str, path: Path, root: Path = REPO) -> Iterator[Import]:
    """Every project module ``module`` imports (``from pkg import submodule`` counts as the
    submodule)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module, alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the package
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*parent, *(node.module.split(".") if node.module else [])])
            else:
                target = node.module or ""
            folder = root.joinpath(*target.split("."))
            for alias in node.names:
                if (folder / f"{alias.name}.py").exists() or (folder / alias.name).is_dir():
                    yield Import(module, f"{target}.{alias.name}", node.lineno)
                else:
                    yield Import(module, target, node.lineno)


def violations(root: Path = REPO, scan: tuple[str, ...] = PACKAGES) -> list[str]:
    found = []
    for module, path in modules(root, scan):
        mine = layer_of(module)
        for imp in imports_of(module, path, root):
            if imp.imported.split(".")[0] not in PACKAGES:
                continue
            theirs = layer_of(imp.imported)
            if theirs != mine and theirs not in ALLOWED[mine]:
                found.append(
                    f"{path.relative_to(root)}:{imp.line}: {module} ({mine}) imports "
                    f"{imp.imported} ({theirs})"
                )
    return found


class TestImportDirection:
    def test_every_import_points_the_documented_way(self) -> None:
        assert violations() == []

    def test_a_forbidden_import_is_caught(self, tmp_path: Path) -> None:
        """The checker itself: an actor importing the store, or the simulator importing the
        service, would be reported."""
        fake = tmp_path / "actors"
        fake.mkdir()
        (fake / "bad.py").write_text("from store import open_store\nimport orchestrator.model\n")
        sim = tmp_path / "simulator"
        sim.mkdir()
        (sim / "bad.py").write_text("from orchestrator.config import Settings\n")
        found = violations(tmp_path, ("actors", "simulator"))
        assert len(found) == 2
        assert "actors.bad (actors) imports store (store)" in found[0]
        assert "simulator.bad (simulator) imports orchestrator.config (leaves)" in found[1]

    def test_every_module_has_a_layer_with_rules(self) -> None:
        assert {layer_of(module) for module, _ in modules()} <= set(ALLOWED)


class TestPurity:
    @pytest.mark.parametrize(
        "module",
        sorted(m for m, _ in modules() if layer_of(m) == "leaves" or m in PURE_BEYOND_LEAVES),
    )
    def test_pure_modules_do_no_io(self, module: str) -> None:
        path = dict(modules())[module]
        used = {imp.imported.split(".")[0] for imp in imports_of(module, path)}
        assert used.isdisjoint(IMPURE), f"{module} imports {sorted(used & set(IMPURE))}"


class TestPublicNames:
    def test_all_is_sorted_and_complete(self) -> None:
        """Like httpx's test of its exported members: every name resolves, none is missing."""
        assert orchestrator.__all__ == sorted(orchestrator.__all__, key=str.casefold)
        for name in orchestrator.__all__:
            value = getattr(orchestrator, name)
            assert getattr(importlib.import_module(value.__module__), name) is value

    def test_every_error_is_exported(self) -> None:
        errors = importlib.import_module("orchestrator.errors")
        defined = {
            name
            for name, value in vars(errors).items()
            if inspect.isclass(value) and value.__module__ == "orchestrator.errors"
        }
        assert defined <= set(orchestrator.__all__)

    def test_unknown_names_raise(self) -> None:
        with pytest.raises(AttributeError, match="no attribute 'Nope'"):
            orchestrator.Nope  # noqa: B018


class TestErrors:
    def test_every_orchestrator_error_lives_in_the_errors_module(self) -> None:
        """The errors module draws the whole tree: no subclass is defined anywhere else."""
        for package in ("orchestrator", "actors", "store", "web", "server", "commands"):
            root = importlib.import_module(package)
            for info in pkgutil.walk_packages(root.__path__, f"{package}."):
                # entry points run on import; Alembic's scripts only inside Alembic
                if info.name.endswith("__main__") or ".migrations" in info.name:
                    continue
                importlib.import_module(info.name)
        stack, seen = [OrchestratorError], []
        while stack:
            cls = stack.pop()
            seen.append(cls)
            stack.extend(cls.__subclasses__())
        elsewhere = [
            f"{c.__module__}.{c.__qualname__}"
            for c in seen
            if c.__module__ != "orchestrator.errors" and not c.__module__.startswith("tests")
        ]
        assert elsewhere == []

    def test_the_tree_in_the_docstring_names_every_error(self) -> None:
        errors = importlib.import_module("orchestrator.errors")
        doc = errors.__doc__ or ""
        for name, value in vars(errors).items():
            if inspect.isclass(value) and issubclass(value, OrchestratorError):
                assert name in doc, name
