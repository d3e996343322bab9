"""docs/python.md's examples run as written: every ```python block, in order, in one namespace
(later blocks use the names of earlier ones), with the shipped prior."""
import os
import re

import torch

SOURCE = os.environ.get("TWEEDIE_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))


def test_python_md_examples_run(tweedie):
    with open(os.path.join(SOURCE, "docs", "python.md")) as f:
        blocks = re.findall(r"```python\n(.*?)```", f.read(), re.S)
    assert len(blocks) >= 3
    torch.set_num_threads(2)
    namespace = {}
    for i, block in enumerate(blocks):
        exec(compile(block, f"docs/python.md block {i + 1}", "exec"), namespace)
    # what the blocks promise: an estimate of the images' shape, and K draws with a spread
    assert namespace["x_hat"].shape == namespace["x"].shape
    assert namespace["r"].samples.shape == (4, 4, 1, 32, 32) and float(namespace["r"].std.mean()) > 0
