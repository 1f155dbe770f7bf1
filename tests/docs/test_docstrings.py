"""Every public function and class of the public packages has a docstring of its own.

Public: the names in a package's ``__all__`` (or, without one, its public module-level functions
and classes). The API reference pages are generated from these docstrings, so a missing one is a
hole in the documentation. Auto-generated docstrings (a dataclass's or NamedTuple's signature
line) and docstrings inherited from a base class do not count.
"""

import importlib
import inspect
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "docs" / "tools"))
import render  # noqa: E402

PACKAGES = ["spikeflow", "spikeflow.data.datasets"] + [m for m, _ in render.API_MODULES]


def public_objects(module_name):
    mod = importlib.import_module(module_name)
    names = getattr(mod, "__all__", None)
    if names is None:
        names = [n for n, o in vars(mod).items() if not n.startswith("_")
                 and (inspect.isfunction(o) or inspect.isclass(o)) and getattr(o, "__module__", "") == module_name]
    for name in names:
        obj = getattr(mod, name)
        if inspect.isfunction(obj) or inspect.isclass(obj):
            yield name, obj


def own_docstring(obj) -> str:
    doc = obj.__dict__.get("__doc__") if inspect.isclass(obj) else obj.__doc__
    doc = (doc or "").strip()
    if inspect.isclass(obj) and re.fullmatch(rf"{re.escape(obj.__name__)}\(.*\)", doc, re.S):
        return ""  # dataclass / NamedTuple: the generated signature line
    return doc


@pytest.mark.parametrize("module_name", PACKAGES)
def test_public_names_have_docstrings(module_name):
    objs = list(public_objects(module_name))
    assert objs, f"{module_name} exports no functions or classes"
    missing = [f"{module_name}.{name} ({obj.__module__})" for name, obj in objs if not own_docstring(obj)]
    assert not missing, "public names without a docstring:\n" + "\n".join(missing)


def test_the_check_sees_generated_and_inherited_docstrings():
    from dataclasses import dataclass

    @dataclass
    class Plain:
        a: int = 0

    class Child(ValueError):
        pass

    def documented():
        """Has one."""

    assert own_docstring(Plain) == "" and own_docstring(Child) == ""
    assert own_docstring(documented) == "Has one."
