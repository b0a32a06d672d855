"""The package's shape: the library apart from the experiments, no import circle,
modules and functions of a readable size."""

import ast
import pathlib

import pytest

_PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "nsf_optax"
_EXPERIMENTS = _PACKAGE / "experiments"
# Where the size rules hold: the experiments and the spectral library. The core
# (one transformation module with its fast paths) is kept as optax keeps its own.
_SIZED = (_EXPERIMENTS, _PACKAGE / "spectral")
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60  # lines of code: blank lines, comments and docstrings aside


def _modules() -> dict[str, pathlib.Path]:
    names = {}
    for path in _PACKAGE.rglob("*.py"):
        parts = path.relative_to(_PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def _imports(path: pathlib.Path, modules: dict[str, pathlib.Path]) -> set[str]:
    """The package's modules that ``path`` imports (anywhere in the file)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in modules)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in modules else node.module)
    return {m for m in found if m in modules}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        # A package's __init__ is imported with each of its modules: not an edge
        # of the module that is imported through it.
        graph[name] = {
            m for m in _imports(path, modules) if not name.startswith(m + ".")
        }
    return graph


def test_the_library_imports_nothing_from_the_experiments():
    offenders = {
        name: sorted(m for m in imported if m.startswith("nsf_optax.experiments"))
        for name, imported in _graph().items()
        if not name.startswith("nsf_optax.experiments")
    }
    assert not {k: v for k, v in offenders.items() if v}


def test_the_run_machinery_imports_no_experiment():
    # runner/ sits below every experiment family (resnet, compare, landscape, the
    # paper's): it may import the library and itself, nothing above.
    runner = "nsf_optax.experiments.runner"
    offenders = {
        name: sorted(
            m
            for m in imported
            if m.startswith("nsf_optax.experiments")
            and not (m == runner or m.startswith(runner + "."))
        )
        for name, imported in _graph().items()
        if name == runner or name.startswith(runner + ".")
    }
    assert not {k: v for k, v in offenders.items() if v}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    # Tarjan's strongly connected components; a component of two or more modules
    # (or a module importing itself) is a circle.
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph[v]:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_circle():
    assert _cycles(_graph()) == []


def test_the_circle_finder_sees_a_circle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [
        ["a", "b", "c"]
    ]


def _sized_files() -> list[pathlib.Path]:
    return sorted(p for root in _SIZED for p in root.rglob("*.py"))


@pytest.mark.parametrize(
    "path", _sized_files(), ids=lambda p: str(p.relative_to(_PACKAGE))
)
def test_module_and_function_sizes(path):
    source = path.read_text()
    lines = source.splitlines()
    assert len(lines) <= MAX_MODULE_LINES
    long = {}
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        span = set(range(node.lineno, (node.end_lineno or node.lineno) + 1))
        first = node.body[0]
        if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
            span -= set(range(first.lineno, (first.end_lineno or first.lineno) + 1))
        code = [n for n in span if lines[n - 1].strip()[:1] not in ("", "#")]
        if len(code) > MAX_FUNCTION_LINES:
            long[node.name] = len(code)
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines of code: {long}"
