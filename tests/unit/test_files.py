"""Outputs are replaced in one rename and never written over an input."""

import pytest

from focusnet.errors import InvalidParameterError
from focusnet.files import refuse_inputs_as_outputs, replacing, write_text


def test_a_failed_write_leaves_the_old_file_whole(tmp_path):
    path = write_text(tmp_path / "card.md", "old\n")
    with pytest.raises(RuntimeError):
        with replacing(path) as temporary:
            temporary.write_text("half of the new")
            raise RuntimeError("disk full")
    assert path.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["card.md"]  # no temporary left behind


def test_the_temporary_keeps_the_suffix(tmp_path):
    with replacing(tmp_path / "plot.png") as temporary:
        assert temporary.suffix == ".png" and temporary.parent == tmp_path
        temporary.write_bytes(b"png")
    assert (tmp_path / "plot.png").read_bytes() == b"png"


def test_an_output_that_names_an_input_is_refused(tmp_path):
    stack = tmp_path / "stack.tif"
    stack.write_bytes(b"data")
    refuse_inputs_as_outputs([stack], [tmp_path / "out.json", None])
    with pytest.raises(InvalidParameterError, match="is an input: refusing to write over it"):
        refuse_inputs_as_outputs([stack], [tmp_path / "." / "stack.tif"])
