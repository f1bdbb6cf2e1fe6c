"""environment.yml describes the same dependencies as the package metadata; notebooks carry no outputs."""
import re
import tomllib

import yaml

from conftest import ROOT, run_python


def names(requirements):
    return {re.split(r"[<>=!~ \[]", r.strip(), maxsplit=1)[0].lower(): r.replace(" ", "") for r in requirements}


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        wanted += extra
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(item["pip"] for item in env["dependencies"] if isinstance(item, dict) and "pip" in item)
    listed = names(p for p in pip if not p.startswith("-e"))
    assert names(wanted) == listed
    assert "-e ." in pip


def test_openai_clip_needs_old_setuptools():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "setuptools<81" in project["dependencies"]
    assert any(d.startswith("openai-clip") for d in project["dependencies"])


def test_ci_calls_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme and "make demo" in readme
    assert "make test" in ci


def test_the_public_api_resolves_and_imports_no_charts_widgets_or_demo():
    code = ("import sys, clipnb; missing = [n for n in clipnb.__all__ if not hasattr(clipnb, n)]; "
            "print(missing, sorted(m for m in sys.modules if m.split('.')[0] in ('matplotlib', 'ipywidgets', 'sklearn', 'av') "
            "or m.startswith(('clipnb.demo', 'clipnb.ui.panel', 'clipnb.report.plots.base')) or m.endswith('_plots')))")
    out = run_python(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[] []"


def test_the_version_is_stated_once_and_the_installed_metadata_agrees():
    import importlib.metadata

    import clipnb
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    # pyproject states no version of its own: setuptools reads clipnb.__version__
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "clipnb.__version__"}
    assert importlib.metadata.version("clipnb") == clipnb.__version__
    # and no other file repeats the number, where it would go stale
    stated = [str(p.relative_to(ROOT)) for pattern in ("*.md", "docs/*.md", "*.toml", "*.yml", "clipnb/**/*.py")
              for p in ROOT.glob(pattern) if clipnb.__version__ in p.read_text(encoding="utf-8")]
    assert stated == ["clipnb/__init__.py"]


def imported_distributions():
    """Third-party distributions that clipnb's code imports (any `import x` / `from x import` without a dot)."""
    import ast
    import importlib.metadata
    import sys
    providers = importlib.metadata.packages_distributions()
    found, unknown = {}, []
    for path in sorted((ROOT / "clipnb").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                tops = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                tops = [node.module.split(".")[0]]
            else:
                continue
            for top in tops:
                if top in sys.stdlib_module_names or top == "clipnb":
                    continue
                if top not in providers:
                    unknown.append(f"{top} ({path.relative_to(ROOT)})")
                for dist in providers.get(top, []):
                    found.setdefault(dist, path.relative_to(ROOT))
    return found, unknown


def canonical(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_module_clipnb_imports_is_a_declared_dependency():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {canonical(n) for n in names(project["dependencies"])}
    for extra in project.get("optional-dependencies", {}).values():
        declared |= {canonical(n) for n in names(extra)}
    found, unknown = imported_distributions()
    assert not unknown, f"imported but not installed, so no distribution is known: {unknown}"
    missing = sorted(f"{dist} (imported in {where})" for dist, where in found.items() if canonical(dist) not in declared)
    assert not missing, f"add to pyproject.toml's dependencies (and environment.yml): {missing}"
