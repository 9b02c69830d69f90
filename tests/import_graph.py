"""The import graph of a package, and its cycles.

Every ``import`` statement of every file counts, also those inside functions (they hide a
cycle from Python, not from a reader). A module's import of one of its own parent packages
is left out: Python imports the parent first anyway. Run from the repository root::

    python tests/import_graph.py jetfm   # prints each cycle; exit status 1 if there is one
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path


def module_files(package: Path) -> dict[str, Path]:
    """``{dotted module name: file}`` of every ``.py`` file below ``package`` (a package's
    ``__init__.py`` under the package's own name), named relative to ``package``'s parent."""
    package = Path(package)
    modules = {}
    for file in sorted(package.rglob("*.py")):
        parts = file.relative_to(package.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = file
    return modules


def _imported_names(node: ast.AST, package: str) -> list[str]:
    """Dotted names one import statement may load (``package``: the importing module's)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            parts = package.split(".")[: len(package.split(".")) - node.level + 1]
            base = ".".join([*parts, base] if base else parts)
        return [base, *(f"{base}.{alias.name}" for alias in node.names)]
    return []


def import_graph(package: Path) -> dict[str, set[str]]:
    """``{module: modules of the same package it imports}``."""
    modules = module_files(package)

    def owner(name: str) -> str | None:  # the module a dotted name lives in
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, file in modules.items():
        package_name = name if file.name == "__init__.py" else name.rpartition(".")[0]
        graph[name] = set()
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"), str(file))):
            for imported in _imported_names(node, package_name):
                target = owner(imported)
                if target and target != name and not name.startswith(target + "."):
                    graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module, each sorted (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for other in sorted(graph[module]):
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            component = []
            while True:
                other = stack.pop()
                component.append(other)
                if other == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10 * len(graph) + 100))
    try:
        for module in sorted(graph):
            if module not in index:
                visit(module)
    finally:
        sys.setrecursionlimit(limit)
    return sorted(found)


def modules_loaded_by(code: str, cwd: str | Path | None = None) -> list[str]:
    """Top-level names of every module in ``sys.modules`` after a fresh interpreter ran
    ``code`` (the imports that running it costs, as opposed to the static graph above)."""
    import json
    import subprocess

    driver = f"{code}\nimport json, sys\nprint(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
    out = subprocess.run([sys.executable, "-c", driver], cwd=cwd, capture_output=True,
                         text=True, timeout=120)  # fmt: skip
    if out.returncode != 0:
        raise RuntimeError(f"{code!r} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    """Print the cycles of the package named on the command line (default ``jetfm``)."""
    args = sys.argv[1:] if argv is None else argv
    package = Path(args[0] if args else "jetfm")
    graph = import_graph(package)
    found = cycles(graph)
    for component in found:
        print("cycle:", ", ".join(component))
    print(f"{len(found)} import cycles among {len(graph)} modules")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
