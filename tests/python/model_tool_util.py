"""The C++ side of the cross-language model-file tests: tests/cpp/model_tool."""
import os
import pathlib

import pytest


def model_tool():
    """The C++ model tool: MIXTURA_MODEL_TOOL, else build/tests/cpp/model_tool. Missing in CI is a failure."""
    path = os.environ.get("MIXTURA_MODEL_TOOL") or str(pathlib.Path(__file__).resolve().parents[2] / "build" /
                                                        "tests" / "cpp" / "model_tool")
    if os.access(path, os.X_OK):
        return path
    message = f"the C++ model tool is not built ({path}); build the target model_tool or set MIXTURA_MODEL_TOOL"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)
