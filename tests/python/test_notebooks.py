"""Every notebook in notebooks/ runs top to bottom (its own assertions included)."""
import pathlib

import pytest

# Not run on the lower copies of the core by tests/run_all.sh (conftest.py), for this reason:
pytestmark = pytest.mark.top_level_only(reason=(
    "notebooks are examples: what they assert (the ELBO staircase, streamed == batch scores, the "
    "adaptation to a shift) test_gmm, test_stream and test_gmm_stream check at every level"))

nbformat = pytest.importorskip("nbformat", reason="pip install '.[test]' brings nbformat and nbclient")
from nbclient import NotebookClient  # noqa: E402

NOTEBOOKS = sorted((pathlib.Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    assert NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path):
    nb = nbformat.read(path, as_version=4)
    # Run in the notebook's own folder, as Jupyter would (figures it saves there are git-ignored).
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
