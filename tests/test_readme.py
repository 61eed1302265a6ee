"""The README's promises: its Python example runs and says what the text says, and it gives exactly the two
set-up commands that CI and a newcomer use."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_library_example_runs_and_agrees_with_its_description():
    code = re.search(r"## The library in ten lines.*?```python\n(.*?)```", README, re.S).group(1)
    scope: dict = {}
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(code, "README.md", "exec"), scope)
    gap, fisher = scope["gap"], scope["fisher"]
    bound = float(scope["lossgap"].loss_gap_lower_bound(16, 0.01, scope["truth"].covariances[0].trace()))
    assert abs(gap.mean - fisher.mean) < 4 * (gap.stderr**2 + fisher.stderr**2) ** 0.5
    assert abs(bound - 1624.0) < 1.0
    assert 0.9 * bound < gap.mean < 1.05 * bound     # the text: "about 1591" against 1624


def test_two_setup_commands():
    block = re.search(r"## Set up and run.*?```bash\n(.*?)```", README, re.S).group(1)
    commands = [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]
    assert commands == ["bash install.sh && python -m verify all --preset cpu",
                        "bash install.sh test && python -m pytest"]
    ci = (Path(__file__).resolve().parent.parent / ".ci" / "run").read_text()
    assert "bash install.sh test && python -m pytest" in ci


def test_every_relative_link_and_image_resolves():
    root = Path(__file__).resolve().parent.parent
    targets = [t for t in re.findall(r"\]\(([^)#]+)\)", README) if "://" not in t]
    assert any(t.startswith("figures/cpu/") for t in targets)
    for target in targets:
        assert (root / target).exists(), target
