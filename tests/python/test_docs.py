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


def test_cpp_blocks_of_extending_and_architecture_are_compiled_code():
    """docs/extending.md's and docs/architecture.md's C++ blocks show code that is compiled and run:
    every line of code in them (comments, elisions with /* */ or ..., and blank lines aside) is a
    line of examples/cpp/ (built against the installed package and run by install.package) or of
    the library, so a block cannot drift from the API it shows. A declaration may stand for its
    definition (the line without its ';' begins a line of the sources)."""
    import glob

    sources = set()
    for pattern in ("examples/cpp/*.cpp", "tweedie/**/*.h", "tweedie/**/*.cpp"):
        for path in glob.glob(os.path.join(SOURCE, pattern), recursive=True):
            with open(path, encoding="utf-8") as f:
                sources.update(line.strip() for line in f)
    checked, missing = 0, []
    for doc in ("extending.md", "architecture.md"):
        with open(os.path.join(SOURCE, "docs", doc), encoding="utf-8") as f:
            blocks = re.findall(r"```cpp\n(.*?)```", f.read(), re.S)
        assert blocks, doc
        for block in blocks:
            for line in block.splitlines():
                code = re.sub(r"\s*//.*$", "", line.strip())
                if not code or "/*" in line or "..." in line or "…" in line:
                    continue
                checked += 1
                stem = code.rstrip(";")
                if code not in sources and not any(s.startswith(stem) for s in sources):
                    missing.append(f"{doc}: {code}")
    assert checked >= 40, checked
    assert not missing, "lines of the docs' C++ blocks found in no source:\n" + "\n".join(missing)
