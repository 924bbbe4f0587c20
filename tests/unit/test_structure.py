"""The shape of the package: no import cycle, one contract, a light import."""

import ast
import io
import tokenize

from conftest import REPO

PACKAGE = REPO / "focusnet"


def internal_imports(path):
    """focusnet modules a module imports, at top level or inside functions (both make a cycle)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1:  # from .x import y / from . import x
                names = [node.module] if node.module else [alias.name for alias in node.names]
            elif node.level == 0 and node.module and node.module.startswith("focusnet"):
                parts = node.module.split(".")
                names = [parts[1]] if len(parts) > 1 else [alias.name for alias in node.names]
            else:
                continue
            found.update(name.split(".")[0] for name in names)
        elif isinstance(node, ast.Import):
            found.update(alias.name.split(".")[1] for alias in node.names
                         if alias.name.startswith("focusnet.") and alias.name.count(".") >= 1)
    modules = {p.stem for p in PACKAGE.glob("*.py")}
    return (found & modules) - {path.stem}


def import_graph():
    return {path.stem: internal_imports(path) for path in PACKAGE.glob("*.py") if path.stem != "__main__"}


def find_cycle(graph):
    """One import cycle as a list of modules, or None."""
    state = {}

    def visit(module, trail):
        state[module] = "open"
        for target in sorted(graph.get(module, ())):
            if state.get(target) == "open":
                return trail[trail.index(target):] + [target]
            if target not in state:
                cycle = visit(target, trail + [target])
                if cycle:
                    return cycle
        state[module] = "done"
        return None

    for module in sorted(graph):
        if module not in state:
            cycle = visit(module, [module])
            if cycle:
                return cycle
    return None


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_no_import_cycle_inside_focusnet():
    graph = import_graph()
    assert {"model", "bundle", "classifier", "loader"} <= set(graph)
    assert find_cycle(graph) is None, find_cycle(graph)


def test_model_folders_and_bundles_share_a_base_not_each_other():
    graph = import_graph()
    assert "bundle" not in graph["model"] and "model" not in graph["bundle"]
    assert "classifier" in graph["model"] and "classifier" in graph["bundle"]
    assert {"model", "bundle"} <= graph["loader"]


def test_the_contract_imports_only_the_standard_library():
    tree = ast.parse((PACKAGE / "contract.py").read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert imported <= {"__future__", "pathlib"}, imported


def test_shared_numbers_are_defined_only_in_the_contract():
    names = {"PATCH_SIZE", "NUM_LEVELS", "INPUT_SCALE", "IMAGE_COLUMNS", "PATCH_COLUMNS", "TAG", "BUNDLE_TAG",
             "SIGNATURE", "INPUT_KEY", "OUTPUT_KEYS", "MODEL_FORMAT_VERSION", "BUNDLE_FORMAT_VERSION"}
    sources = [p for p in PACKAGE.glob("*.py") if p.name != "contract.py"]
    sources += list((REPO / "export").glob("*.py")) + list((REPO / "plugins").glob("*.py"))
    defined = []
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Assign):
                defined += [(path.name, target.id) for target in node.targets
                            if isinstance(target, ast.Name) and target.id in names]
    assert not defined


def test_contract_numbers_are_not_written_out_elsewhere():
    # Literal 84, 11 and 65535 outside the contract (the tests pin them once, below).
    literals = {"84", "84.0", "11", "65535", "65535.0"}
    allowed = {("simulate.py", "UINT16_MAX = 65535")}  # the camera's 16-bit range, another idea
    found = []
    for folder in ("focusnet", "export", "plugins", "scripts", "benchmarks"):
        for path in (REPO / folder).glob("*.py"):
            if path.name == "contract.py":
                continue
            for token in tokenize.generate_tokens(io.StringIO(path.read_text()).readline):
                if token.type == tokenize.NUMBER and token.string in literals \
                        and (path.name, token.line.strip()) not in allowed:
                    found.append(f"{folder}/{path.name}:{token.start[0]}: {token.line.strip()}")
    assert not found, "\n".join(found)


def test_the_contract_keeps_fijis_numbers():
    from focusnet import contract

    # Fiji's Microscope Image Focus Quality plugin tiles 84 x 84, reads 11 classes and feeds 16-bit / 65535.
    assert (contract.PATCH_SIZE, contract.NUM_LEVELS, contract.INPUT_SCALE) == (84, 11, 65535.0)
    assert contract.BUNDLE_TAG == "inference" and contract.BUNDLE_SIGNATURE == "serving_default"
    assert contract.IMAGE_COLUMNS[:16] == ["image", "defocus_level", "mean_certainty", "aggregate_certainty"] + [
        f"prob_{level}" for level in range(11)] + ["patches"]  # columns are only ever added at the end


def test_every_user_facing_error_is_a_focusnet_error():
    from focusnet import errors

    classes = [value for value in vars(errors).values() if isinstance(value, type) and issubclass(value, Exception)]
    assert len(classes) >= 8
    assert all(issubclass(cls, errors.FocusnetError) for cls in classes)
