"""README's two set-up commands stay true: CI runs exactly the documented test command."""

from __future__ import annotations

import re

from tests.conftest import REPO


def _bash_blocks() -> list[str]:
    return re.findall(r"```bash\n(.*?)\n```", (REPO / "README.md").read_text(), flags=re.S)


def test_ci_runs_the_readme_test_command() -> None:
    blocks = _bash_blocks()
    assert len(blocks) >= 2
    demo, tests = blocks[0].strip(), blocks[1].strip()
    assert demo.endswith("llmpulse demo")
    assert "pytest" in tests
    assert tests in (REPO / ".ci" / "run").read_text()
