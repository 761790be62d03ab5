"""Imports flow one way: no module of tritnet imports a module that imports it back (at the top or inside a
function), and the runtime imports neither torch nor tritnet."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _graph(package: Path, prefix: str) -> dict:
    mods = {}
    for f in package.rglob("*.py"):
        name = ".".join((prefix,) + f.relative_to(package).with_suffix("").parts)
        mods[name[:-len(".__init__")] if name.endswith(".__init__") else name] = f
    edges = {m: set() for m in mods}
    for m, f in mods.items():
        pkg = m if f.name == "__init__.py" else m.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = pkg.split(".")[:len(pkg.split(".")) - (node.level - 1)] if node.level else []
                target = ".".join(base + ([node.module] if node.module else [])) if node.level else node.module
                edges[m] |= {t for t in [target] + [f"{target}.{a.name}" for a in node.names] if t in mods}
            elif isinstance(node, ast.Import):
                edges[m] |= {a.name for a in node.names if a.name in mods}
    packages = {m for m, f in mods.items() if f.name == "__init__.py"}
    return {m: e - packages for m, e in edges.items() if m not in packages}


def test_no_two_modules_import_each_other():
    edges = _graph(ROOT / "tritnet", "tritnet")
    circles = sorted((a, b) for a in edges for b in edges[a] if a < b and a in edges.get(b, ()))
    assert circles == []


def test_the_runtime_imports_no_torch_and_no_tritnet():
    for f in (ROOT / "runtime" / "tritnet_rt").rglob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            assert not any(n.split(".")[0] in ("torch", "tritnet") for n in names), (f, names)
