"""What a result depends on: the library modules a program imports, and content fingerprints.

Two consumers rely on the same answer:

- ``dvc.yaml``: each stage depends on exactly the source files in its entry point's import
  closure (:func:`import_closure`), so an edit to a module a stage uses reruns it and an edit
  to any other module does not (``scripts/dvc_deps.py`` writes the lists; a test guards them);
- training resume: a checkpoint is resumed only when :func:`run_key` (configs, the content
  of the input data and upstream weights, and the source of the imported modules) matches.
  Config fields that cannot change a result (how often to log or checkpoint, a time limit)
  are marked with ``field(metadata=RESUME_NEUTRAL)`` and left out of the key, so a run
  stopped by its time limit continues under another limit.

The closure is computed statically from the source: every ``import`` and ``from ... import``
anywhere in a file (function-level imports included), plus worker processes launched as
``python -m fourreal.<module>`` (a string literal naming a library module). Importing a
submodule runs its packages' ``__init__.py``, so those count too.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any, Iterable

REPO = Path(__file__).resolve().parents[2]
LIBRARY = "fourreal"
_WORKER = re.compile(rf"^{LIBRARY}(\.\w+)+$")  # a module name as a string: `python -m fourreal.data_making.render`
_NEUTRAL_KEY = "resume_neutral"
RESUME_NEUTRAL = {_NEUTRAL_KEY: True}  # dataclass field metadata: not part of a run's key


def _module_file(name: str, root: Path) -> Path | None:
    """The source file of first-party module ``name`` (dotted) under ``root``, or None."""
    parts = name.split(".")
    if parts[0] != LIBRARY:
        return None
    base = root.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _package_of(path: Path, root: Path) -> list[str]:
    """The package that module file ``path`` belongs to, as name parts (for relative imports)."""
    return list(path.relative_to(root).parts[:-1])


def imported_modules(path: Path, root: Path = REPO) -> set[str]:
    """Dotted names of every module ``path`` may import: its import statements at any depth
    and string literals naming a library module (``python -m fourreal.x`` workers)."""
    tree = ast.parse(Path(path).read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = _package_of(Path(path).resolve(), root)
                package = package[: len(package) - (node.level - 1)]
                module = ".".join([*package, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)  # `from pkg import submodule`
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and _WORKER.match(node.value):
            names.add(node.value)
    return names


def import_closure(entry: str | Path, root: Path = REPO) -> list[Path]:
    """The source files a program starting at ``entry`` (a ``.py`` file) runs: ``entry``
    itself and every library module reached through its imports, transitively, with the
    ``__init__.py`` of each package on the way. Sorted, relative to ``root``."""
    root = Path(root).resolve()
    todo, seen = [Path(entry).resolve()], set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in imported_modules(path, root):
            parts = name.split(".")
            for depth in range(1, len(parts) + 1):  # `import a.b.c` runs a/__init__, a/b/__init__, a/b/c
                found = _module_file(".".join(parts[:depth]), root)
                if found is not None and found not in seen:
                    todo.append(found)
    return sorted(p.relative_to(root) for p in seen)


def files_under(paths: Iterable[str | Path]) -> list[Path]:
    """Every file of ``paths`` (files as they are, directories walked), sorted; a missing
    path is an error naming it."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_file():
            out.append(p)
        elif p.is_dir():
            out.extend(sorted(f for f in p.rglob("*") if f.is_file()))
        else:
            raise FileNotFoundError(f"{p}: not found; run the stage that makes it first")
    return sorted(set(out))


def fingerprint(paths: Iterable[str | Path], relative_to: str | Path | None = None) -> str:
    """SHA-256 (hex, 16 chars) of the names and bytes of every file under ``paths``.
    Names are taken relative to ``relative_to`` when given, so moving the tree keeps it."""
    h = hashlib.sha256()
    for f in files_under(paths):
        name = f.relative_to(relative_to) if relative_to is not None else f
        h.update(str(name).encode() + b"\0")
        with open(f, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                h.update(block)
        h.update(b"\0")
    return h.hexdigest()[:16]


def run_key(entry: str | Path, configs: Iterable[Any], inputs: Iterable[str | Path] = (), root: Path = REPO) -> str:
    """A short hash of everything a training run depends on, so that only a checkpoint of the
    very same run is resumed: the ``configs`` (dataclasses or plain data), the content of the
    ``inputs`` (data directories, upstream model weights) and the source of every library
    module in ``entry``'s import closure (other modules may change freely)."""
    h = hashlib.sha256(json.dumps([_key_data(c) for c in configs], sort_keys=True, default=str).encode())
    h.update(fingerprint(list(inputs)).encode())
    h.update(code_fingerprint(entry, root).encode())
    return h.hexdigest()[:16]


def _key_data(value: Any) -> Any:
    """``value`` as plain data for a run key: dataclasses become dicts without their
    :data:`RESUME_NEUTRAL` fields, recursively."""
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _key_data(getattr(value, f.name)) for f in fields(value) if not f.metadata.get(_NEUTRAL_KEY)}
    if isinstance(value, (list, tuple)):
        return [_key_data(v) for v in value]
    if isinstance(value, dict):
        return {k: _key_data(v) for k, v in value.items()}
    return value


def code_fingerprint(entry: str | Path, root: Path = REPO) -> str:
    """Fingerprint of the source of ``entry`` and every library module it imports (its
    :func:`import_closure`): what a cached result computed by that code must be keyed on."""
    return fingerprint([root / p for p in import_closure(entry, root)], relative_to=root)


_STAGE_CMD = re.compile(r"python -m (stages\.\w+)")


def is_code_dep(dep: str) -> bool:
    """Whether a ``dvc.yaml`` dependency is source code (managed from the import closure)."""
    return dep.endswith(".py") and dep.split("/")[0] in ("stages", LIBRARY)


def stage_code_deps(stages: dict[str, Any], root: Path = REPO) -> dict[str, tuple[list[str], list[str]]]:
    """For every stage of a parsed ``dvc.yaml`` (its ``stages`` mapping; ``foreach`` stages
    by their template), ``(declared, closure)``: the code dependencies it lists and the
    files of its command's import closure, both sorted."""
    out = {}
    for name, stage in stages.items():
        body = stage.get("do", stage)
        match = _STAGE_CMD.search(body["cmd"])
        if match is None:
            raise ValueError(f"dvc.yaml: stage {name}: command {body['cmd']!r} does not run `python -m stages.<name>`")
        entry = root / (match.group(1).replace(".", "/") + ".py")
        declared = sorted(str(d) for d in body.get("deps", []) if is_code_dep(str(d)))
        out[name] = (declared, [str(p) for p in import_closure(entry, root)])
    return out
