"""The package layout the code promises (README "Where things live"): a pure core, engines compared by name only in
advisor/engines/, no import cycles. Read from the source with ast, so a violation names the file and line."""

import ast
from pathlib import Path

import pytest

from advisor import engines

PACKAGE = Path(__file__).resolve().parent.parent / "advisor"
LAYERS = ("core", "engines", "sources", "detect", "apps", "present")
# what the pure core may import: itself, the error types, and the standard library minus I/O
CORE_FORBIDDEN_MODULES = {"os", "pathlib", "subprocess", "socket", "urllib", "http", "click", "tomllib", "io",
                          "shutil", "tempfile", "psutil", "pynvml", "gguf"}
CORE_FORBIDDEN_CALLS = {"open", "read_text", "read_bytes", "write_text", "write_bytes", "print"}


def modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        name = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        yield name, path, ast.parse(path.read_text(encoding="utf-8"), str(path))


def imports(tree, top_level_only=False):
    nodes = tree.body if top_level_only else ast.walk(tree)
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module:
            yield node.lineno, node.module, [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            for a in node.names:
                yield node.lineno, a.name, []


def test_every_layer_exists():
    for layer in LAYERS:
        assert (PACKAGE / layer / "__init__.py").is_file(), layer


def test_the_core_is_pure():
    problems = []
    for name, path, tree in modules():
        if not name.startswith("advisor.core"):
            continue
        for line, module, _ in imports(tree):
            root = module.split(".")[0]
            if module.startswith("advisor.") and not module.startswith(("advisor.core", "advisor.errors")):
                problems.append(f"{path.name}:{line} imports {module}")
            if root in CORE_FORBIDDEN_MODULES:
                problems.append(f"{path.name}:{line} imports {module}")
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                fn = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                if fn in CORE_FORBIDDEN_CALLS:
                    problems.append(f"{path.name}:{node.lineno} calls {fn}()")
    assert not problems, problems


def test_engine_names_are_compared_only_inside_engines():
    names = set(engines.names())
    problems = []
    for name, path, tree in modules():
        if name.startswith("advisor.engines"):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare):
                for c in ast.walk(node):
                    if isinstance(c, ast.Constant) and c.value in names:
                        problems.append(f"{path.relative_to(PACKAGE)}:{node.lineno} compares with {c.value!r}")
            if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) and node.slice.value in names:
                problems.append(f"{path.relative_to(PACKAGE)}:{node.lineno} looks up {node.slice.value!r}")
    assert not problems, problems


def test_no_import_cycles_lazy_imports_included():
    graph = {}
    for name, _, tree in modules():
        deps = set()
        for _, module, members in imports(tree):
            if module.startswith("advisor"):
                deps.add(module)
                deps.update(f"{module}.{m}" for m in members)  # from advisor.core import cache
        graph[name] = deps
    graph = {k: {d for d in v if d in graph and d != k} for k, v in graph.items()}
    seen, stack, cycles = set(), [], []

    def visit(node):
        if node in stack:
            cycles.append(stack[stack.index(node):] + [node])
            return
        if node in seen:
            return
        seen.add(node)
        stack.append(node)
        for dep in sorted(graph[node]):
            visit(dep)
        stack.pop()

    for node in sorted(graph):
        visit(node)
    assert not cycles, cycles[:3]


@pytest.mark.parametrize("engine", engines.all_engines(), ids=lambda e: e.name)
def test_every_engine_implements_the_protocol(engine):
    from advisor.engines.base import Engine

    assert isinstance(engine, Engine) and engine.name and engine.label
    for method in ("allocation", "deployment", "place", "gpu_totals", "memory_terms", "summary_line",
                   "explain_lines"):
        assert getattr(type(engine), method) is not getattr(Engine, method, None), (engine.name, method)
    assert engine.default_quant and engine.weight_ladder and engine.kv_ladder and engine.check_kv_types
