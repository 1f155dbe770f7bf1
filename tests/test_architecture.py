"""The package map of docs/architecture.md holds: each package imports only packages above it."""

import ast
from pathlib import Path

import spikeflow

# The order of docs/architecture.md's package map.
ORDER = ["errors", "atomic", "provenance", "timebase", "surrogate", "neurons", "kernels", "nn", "ir", "runtime",
         "hardware", "sim", "data", "metrics", "train", "viz", "control", "commands"]
ROOT = Path(spikeflow.__file__).parent


def _package(path: Path) -> str:
    part = path.relative_to(ROOT).parts[0]
    return "commands" if part in ("cli.py", "__main__.py") else part.removesuffix(".py")


def _imported(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "spikeflow":
                names |= {a.name for a in node.names}
            elif node.module.startswith("spikeflow."):
                names.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            names |= {a.name.split(".")[1] for a in node.names if a.name.startswith("spikeflow.")}
    return names


def test_every_package_is_in_the_map():
    found = {_package(p) for p in ROOT.rglob("*.py")} - {"__init__"}
    assert found <= set(ORDER), found - set(ORDER)


def test_imports_point_up_the_map_only():
    wrong = []
    for path in sorted(ROOT.rglob("*.py")):
        pkg = _package(path)
        if pkg == "__init__":
            continue
        imported = {"commands" if n == "cli" else n for n in _imported(ast.parse(path.read_text(), str(path)))}
        for name in imported - {pkg, "__version__"}:
            if name not in ORDER or ORDER.index(name) >= ORDER.index(pkg):
                wrong.append(f"{path.relative_to(ROOT)} imports spikeflow.{name}")
    assert not wrong, wrong
