"""The lazy public door that each subpackage's `__init__` opens: a name of its `__all__` is imported from its
module on first use (PEP 562), so importing a subpackage imports none of its modules (and no torch, pandas or
matplotlib); a submodule is reached as `package.module` after `import package`."""
from __future__ import annotations

import importlib
import importlib.util


def lazy_door(package: str, exports: dict[str, str], fallback: str | None = None):
    """(__getattr__, __dir__, __all__) for `package`, whose `exports` map each module (relative to it) to its
    public names, separated by spaces. With `fallback`, a name not in `exports` is looked up in that module
    too (for a package that stands where a module was, such as `clipnb.models` for the old models.py)."""
    homes = {name: module for module, names in exports.items() for name in names.split()}
    names = sorted(homes)

    def __getattr__(name: str):
        module = homes.get(name)
        if module is not None:
            return getattr(importlib.import_module(f".{module}", package), name)
        if not name.startswith("_") and importlib.util.find_spec(f"{package}.{name}") is not None:
            return importlib.import_module(f".{name}", package)
        if fallback is not None and not name.startswith("__"):
            try:
                return getattr(importlib.import_module(f".{fallback}", package), name)
            except AttributeError:
                pass
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(set(names) | set(exports))

    return __getattr__, __dir__, names
