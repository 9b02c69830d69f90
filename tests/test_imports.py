"""The import structure of jetfm: every module imports on its own, the import graph (also
imports inside functions) has no cycle (tests/import_graph.py), and the command line builds
its parser without the heavy libraries (so `jetfm --help` answers at once)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.import_graph import cycles, import_graph, main, module_files, modules_loaded_by

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "jetfm"

# One fresh interpreter imports the third-party names jetfm's modules import at module level,
# then forks one child per jetfm module: each child starts with no jetfm module loaded and
# imports only its own (what a fresh interpreter would do, without paying for torch and
# transformers 60 times).
_DRIVER = textwrap.dedent(
    """
    import importlib, json, os, sys, traceback
    preload, modules = json.loads(sys.argv[1]), json.loads(sys.argv[2])
    for name, attribute in preload:
        try:
            getattr(importlib.import_module(name), attribute or "__name__", None)
        except ImportError:  # an optional dependency: the child reports what it breaks
            pass
    assert not any(m == "jetfm" or m.startswith("jetfm.") for m in sys.modules)
    failures = {}
    for module in modules:
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read)
            try:
                importlib.import_module(module)
                os._exit(0)
            except BaseException:
                os.write(write, traceback.format_exc()[-2000:].encode())
                os._exit(1)
        os.close(write)
        with os.fdopen(read) as pipe:
            message = pipe.read()
        _, status = os.waitpid(pid, 0)
        if status:
            failures[module] = message or f"exit status {status}"
    print(json.dumps(failures))
    """
)


def _module_level_imports(package: Path) -> list[tuple[str, str | None]]:
    """``(module, name or None)`` of every import outside jetfm that runs when a module of
    ``package`` is imported (not those inside functions or classes)."""
    found = set()
    for file in module_files(package).values():
        nodes = list(ast.parse(file.read_text(encoding="utf-8")).body)
        while nodes:
            node = nodes.pop()
            if isinstance(node, ast.Import):
                found.update((alias.name, None) for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and not node.level:
                found.update((node.module, alias.name) for alias in node.names)
            elif not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                nodes.extend(ast.iter_child_nodes(node))
    keep = [item for item in found if item[0].split(".")[0] not in ("jetfm", "__future__")]
    return sorted(keep, key=lambda item: (item[0], item[1] or ""))


def test_every_module_imports_on_its_own():
    modules = sorted(module_files(PACKAGE))
    assert len(modules) > 50 and "jetfm.modeling.heads" in modules
    preload = _module_level_imports(PACKAGE)
    assert ("torch", None) in preload and ("transformers", "PreTrainedModel") in preload
    out = subprocess.run(
        [sys.executable, "-c", _DRIVER, json.dumps(preload), json.dumps(modules)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    failures = json.loads(out.stdout.splitlines()[-1])
    assert not failures, "\n\n".join(f"{m}:\n{tb}" for m, tb in failures.items())


def test_import_graph_has_no_cycle():
    assert cycles(import_graph(PACKAGE)) == []


def test_the_graph_sees_imports_inside_functions_and_relative_ones(tmp_path, capsys):
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("from pkg.sub.b import B\n")
    (package / "a.py").write_text("def f():\n    from pkg.sub import b\n    return b\n")
    (package / "sub" / "b.py").write_text("from ..a import f\nB = 1\n")
    (package / "sub" / "c.py").write_text("from . import b\nimport pkg.a\nfrom pkg import sub\n")
    graph = import_graph(package)
    assert graph == {
        "pkg": set(),
        "pkg.a": {"pkg.sub", "pkg.sub.b"},
        "pkg.sub": {"pkg.sub.b"},
        "pkg.sub.b": {"pkg.a"},
        "pkg.sub.c": {"pkg.sub.b", "pkg.a"},  # its own parent package is left out
    }
    assert cycles(graph) == [["pkg.a", "pkg.sub", "pkg.sub.b"]]
    assert main([str(package)]) == 1
    assert "cycle: pkg.a, pkg.sub, pkg.sub.b" in capsys.readouterr().out
    (package / "a.py").write_text("def f():\n    return 1\n")
    assert cycles(import_graph(package)) == [] and main([str(package)]) == 0


#: libraries that take seconds to import (torch, transformers) or more than a few tens of
#: milliseconds; none of them is needed to parse a command line
HEAVY = ("torch", "transformers", "numpy", "awkward", "uproot", "matplotlib", "sklearn", "scipy",
         "huggingface_hub", "pyarrow", "safetensors", "h5py", "pandas", "yaml")  # fmt: skip


@pytest.mark.parametrize(
    "code",
    [
        # the full parser, every command's help text rendered (the docs' CLI reference too)
        "from jetfm.cli import build_parser\n"
        "import argparse\n"
        "def walk(p):\n"
        "    p.format_help()\n"
        "    for a in p._actions:\n"
        "        if isinstance(a, argparse._SubParsersAction):\n"
        "            for sub in a.choices.values():\n"
        "                walk(sub)\n"
        "walk(build_parser())",
        "from jetfm.cli import main\nassert main(['--version']) == 0",
        "from jetfm.cli import main\nassert main(['finetune', '--help']) == 0",
        # a bad value is refused before any work
        "from jetfm.cli import main\nassert main(['quickstart', '--batch-size', '-5']) == 2",
    ],
    ids=["build_parser", "version", "finetune-help", "bad-value"],
)
def test_the_command_line_parses_without_heavy_imports(code):
    loaded = set(modules_loaded_by(code, cwd=ROOT))
    assert "jetfm" in loaded
    assert sorted(loaded & set(HEAVY)) == []
