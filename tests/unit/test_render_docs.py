"""The docs' measured figures are rendered from the committed results (scripts/render_docs.py)."""

import importlib.util
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def load_script():
    spec = importlib.util.spec_from_file_location("render_docs", REPO / "scripts" / "render_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


render_docs = load_script()


def test_every_doc_equals_its_rendering_from_the_committed_results():
    stale = [str(path.relative_to(REPO)) for path, _ in render_docs.stale_documents(REPO)]
    assert not stale, f"run python scripts/render_docs.py: stale {stale}"


def test_every_renderer_is_used_by_some_doc():
    text = "".join(path.read_text(encoding="utf-8") for path in render_docs.documents(REPO))
    used = {name for name, _ in render_docs.MARKER.findall(text)}
    assert used == set(render_docs.RENDERERS)


def test_the_out_of_focus_rule_is_the_tools_rule():
    plate = pytest.importorskip("focusnet.plate")
    assert render_docs.OUT_OF_FOCUS_LEVEL == plate.DEFOCUSED_LEVEL


@pytest.fixture
def results(tmp_path):
    folder = tmp_path / "benchmarks" / "results"
    folder.mkdir(parents=True)
    backends = [{"backend": "tensorflow", "import_s": 3.0, "seconds_per_image": 0.2, "peak_mb": 600.0},
                {"backend": "onnxruntime", "import_s": 0.03, "seconds_per_image": 0.4, "peak_mb": 450.0}]
    (folder / "onnx.json").write_text(json.dumps({"machine": "test machine", "image": "2048 x 2048",
                                                  "max_probability_difference": 1e-4, "backends": backends}))
    sizes = [{"size": "696x520", "paper_arch_s": 0.08, "focusnet_s": 0.01},
             {"size": "2048x2048", "paper_arch_s": 0.9, "focusnet_s": 0.1}]
    (folder / "speed.json").write_text(json.dumps({"sizes": sizes}))
    return render_docs.Results(tmp_path)


def test_a_block_is_replaced_between_its_markers_and_the_rest_is_kept(results):
    text = "before\n<!-- results:onnx -->\nold table\n<!-- /results -->\nafter\n"
    rendered = render_docs.render_text(text, results)
    assert rendered.startswith("before\n<!-- results:onnx -->\n") and rendered.endswith("\n<!-- /results -->\nafter\n")
    assert "| onnxruntime | 0.03 s | 0.400 s | 450 MB |" in rendered and "old table" not in rendered
    assert render_docs.render_text(rendered, results) == rendered


def test_an_inline_figure_stays_in_its_sentence(results):
    text = "focusnet is <!-- results:speed-ratio -->1x<!-- /results --> faster."
    expected = "focusnet is <!-- results:speed-ratio -->8.0-9.0x<!-- /results --> faster."
    assert render_docs.render_text(text, results) == expected


@pytest.mark.parametrize("text, message", [
    ("<!-- results:nonsense -->x<!-- /results -->", "unknown marker results:nonsense"),
    ("<!-- results:onnx -->\nno end\n", "without <!-- /results -->"),
    ("<!-- results:onnx -->\n<!-- results:speed-ratio -->x<!-- /results -->", "not closed"),
    ("a table inline: <!-- results:onnx --><!-- /results -->", "is a block"),
])
def test_a_bad_marker_is_refused_with_the_reason(results, text, message):
    with pytest.raises(render_docs.RenderError, match=message):
        render_docs.render_text(text, results, where="doc.md")


def test_check_mode_names_a_stale_doc_and_changes_nothing(results, capsys):
    root = results.root
    (root / "docs").mkdir()
    stale = "<!-- results:speed-ratio -->1x<!-- /results -->\n"
    (root / "README.md").write_text(stale)
    assert render_docs.main(["--check", "--root", str(root)]) == 1
    assert "stale: README.md" in capsys.readouterr().err
    assert (root / "README.md").read_text() == stale
    assert render_docs.main(["--root", str(root)]) == 0
    assert render_docs.main(["--check", "--root", str(root)]) == 0
    assert "8.0-9.0x" in (root / "README.md").read_text()
