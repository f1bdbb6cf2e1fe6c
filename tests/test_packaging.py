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
