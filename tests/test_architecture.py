"""The package's layout is its architecture (docs/architecture.md): every module belongs to a stage of the data
flow, and imports only from its own stage or a lower one. Read from the source with `ast`, so that imports
inside functions count too (they hide a cycle at import time, not in the design); imports under
`if TYPE_CHECKING:` never run and do not count. Also: no cycle at all, no submodule hidden by a package
attribute of the same name, no `_private` name imported from another module, and every old import path
still imports (with a DeprecationWarning) for one release."""
from __future__ import annotations

import ast
import graphlib
import importlib
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "clipnb"

# lowest first: a module may import from its own stage or a lower one
STAGES = [
    ("base", ["clipnb", "clipnb.words", "clipnb.progress", "clipnb.arrays", "clipnb._lazy", "clipnb._moved"]),
    ("data", ["clipnb.data"]),
    ("models", ["clipnb.models"]),
    ("embed", ["clipnb.embed"]),
    ("zeroshot", ["clipnb.zeroshot"]),
    ("tasks", ["clipnb.tasks"]),
    ("report", ["clipnb.report"]),
    ("ui", ["clipnb.ui"]),
    ("app", ["clipnb.cli", "clipnb.__main__", "clipnb.notebook", "clipnb.testing"]),
    ("demo and bench", ["clipnb.demo", "clipnb.bench"]),
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def stage(module: str) -> int:
    """The stage of a module: the longest prefix of STAGES that names it or its package."""
    best, level = -1, None
    for number, (_, prefixes) in enumerate(STAGES):
        for prefix in prefixes:
            if (module == prefix or (prefix != "clipnb" and module.startswith(prefix + "."))) and len(prefix) > best:
                best, level = len(prefix), number
    assert level is not None, f"{module} belongs to no stage: add it to STAGES and to docs/architecture.md"
    return level


def lazy_homes() -> dict[str, str]:
    """The root package's lazy names (clipnb.X -> the module that defines X): `from clipnb import X` imports that
    module, although clipnb/__init__.py itself imports nothing."""
    tree = ast.parse((PACKAGE / "__init__.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "_EXPORTS" for t in node.targets):
            exports = ast.literal_eval(node.value)
            return {name: f"clipnb.{module}" for module, names in exports.items() for name in names.split()}
    raise AssertionError("clipnb/__init__.py has no _EXPORTS")


def type_checking_nodes(tree: ast.AST) -> set[int]:
    """ids of the nodes inside `if TYPE_CHECKING:` blocks (never run)."""
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                skipped.update(id(n) for n in ast.walk(child))
    return skipped


def imports(module: str) -> list[tuple[str, str, int]]:
    """(imported module, imported name or "", line) for each clipnb import of `module` that runs."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = type_checking_nodes(tree)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    homes = lazy_homes()
    found = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found += [(alias.name, "", node.lineno) for alias in node.names if alias.name.split(".")[0] == "clipnb"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "clipnb":
                continue
            for alias in node.names:
                if f"{target}.{alias.name}" in MODULES:  # from package import submodule
                    found.append((f"{target}.{alias.name}", "", node.lineno))
                elif target == "clipnb" and alias.name in homes:  # a lazy name of the root package
                    found.append((homes[alias.name], alias.name, node.lineno))
                else:
                    found.append((target, alias.name, node.lineno))
    return found


def test_every_module_is_in_a_stage():
    for module in MODULES:
        stage(module)


def test_no_module_imports_from_a_higher_stage():
    upward = [f"{module} (stage {STAGES[stage(module)][0]}) line {line} imports {target} "
              f"(stage {STAGES[stage(target)][0]})"
              for module in MODULES for target, _, line in imports(module)
              if target in MODULES and stage(target) > stage(module)]
    assert not upward, "\n".join(upward)


def test_the_import_graph_has_no_cycle():
    graph = {module: {target for target, _, _ in imports(module) if target in MODULES and target != module}
             for module in MODULES}
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as exc:
        pytest.fail(f"import cycle: {' -> '.join(exc.args[1])}")


def test_every_import_names_a_module_that_exists():
    missing = [f"{module} line {line}: {target}" for module in MODULES for target, _, line in imports(module)
               if target not in MODULES]
    assert not missing, "\n".join(missing)


def test_no_private_name_is_imported_from_another_module():
    private = [f"{module} line {line}: {name} from {target}" for module in MODULES
               for target, name, line in imports(module)
               if name.startswith("_") and not name.startswith("__") and target != module]
    assert not private, "\n".join(private)


def test_no_submodule_is_shadowed_by_an_attribute_of_its_package():
    """`clipnb.zeroshot.results` is a module whatever `clipnb.zeroshot` exports (the old `clipnb.classify`
    module was hidden by the function `classify`). Checked in a fresh process that imports every module."""
    code = (
        "import importlib, sys, warnings\n"
        "warnings.simplefilter('ignore')\n"
        f"names = {sorted(m for m in MODULES if not m.endswith('__main__'))!r}\n"
        "for name in names: importlib.import_module(name)\n"
        "for name in names:\n"
        "    package, _, child = name.rpartition('.')\n"
        "    if package and getattr(sys.modules[package], child, None) is not sys.modules[name]:\n"
        "        print('shadowed:', name)\n"
        "    all_names = getattr(sys.modules[package], '__all__', ()) if package else ()\n"
        "    if child in all_names and package != 'clipnb':\n"
        "        print('a public name that is also a module:', name)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout == "", result.stdout


def moved():
    from clipnb._moved import MOVED

    return sorted(MOVED.items())


@pytest.mark.parametrize(("old", "new"), moved(), ids=[old for old, _ in moved()])
def test_an_old_import_path_still_works_with_a_deprecation_warning(old, new):
    for name in [n for n in sys.modules if n == old or n.startswith(old + ".")]:
        del sys.modules[name]  # imported before by another test: import it afresh, so that it warns
    with pytest.warns(DeprecationWarning, match=rf"{old}.*{new}"):
        module = importlib.import_module(old)
    assert module is importlib.import_module(new)


def test_old_names_of_the_functions_classify_and_embedding_map_stay_functions():
    import clipnb

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        importlib.import_module("clipnb.classify")
        importlib.import_module("clipnb.embedding_map")
    assert callable(clipnb.classify) and callable(clipnb.embedding_map)
    assert clipnb.classify.__module__ == "clipnb.zeroshot.results"


def test_the_top_of_the_package_stays_small():
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= 10, top
