"""The built wheel holds every module, and instrumenting an app stays light."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import PYTHON, REPO

pytestmark = pytest.mark.slow

PACKAGES = ("agent", "collectors", "analyzers", "dashboards")
HEAVY = ("torch", "onnxruntime", "pandas", "chdb", "sentence_transformers", "sklearn", "scipy", "numpy", "pyarrow")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # build from a clean copy: an in-tree build/ directory could carry stale modules into the wheel
    source = tmp_path_factory.mktemp("src") / "llmpulse"
    shutil.copytree(
        REPO,
        source,
        ignore=shutil.ignore_patterns(
            ".git", ".venv*", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", ".llmpulse"
        ),
    )
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out), str(source)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (built,) = out.glob("llmpulse-*.whl")
    return built


def _source_modules() -> set[str]:
    modules = {"llmpulse"}
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            parts = path.relative_to(REPO).with_suffix("").parts
            modules.add(".".join(("llmpulse", *(parts[:-1] if parts[-1] == "__init__" else parts))))
    return modules


def test_wheel_contains_and_imports_every_module(wheel: Path, tmp_path: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        archive.extractall(tmp_path / "site")
    in_wheel = {n[:-3].replace("/", ".").removesuffix(".__init__") for n in names if n.endswith(".py")}
    missing = _source_modules() - in_wheel
    assert not missing, f"modules missing from the wheel: {sorted(missing)}"
    assert "llmpulse/agent/enrich/model_prices.json" in names
    script = (
        "import importlib, sys\n"
        f"mods = {sorted(in_wheel)!r}\n"
        "for m in mods:\n"
        "    mod = importlib.import_module(m)\n"
        "    assert mod.__file__.startswith(sys.argv[1]), (m, mod.__file__)\n"
        "print(len(mods))\n"
    )
    result = subprocess.run(
        [
            PYTHON,
            "-I",
            "-c",
            f"import sys; sys.path.insert(0, {str(tmp_path / 'site')!r}); exec({script!r})",
            str(tmp_path / "site"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.strip()) == len(in_wheel)


def test_core_requirements_pull_no_heavy_packages(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        metadata = next(archive.read(n).decode() for n in archive.namelist() if n.endswith("METADATA"))
    core = [
        line.split(":", 1)[1].strip().lower()
        for line in metadata.splitlines()
        if line.startswith("Requires-Dist:") and "extra ==" not in line
    ]
    assert core, "core dependencies are declared"
    for requirement in core:
        assert not requirement.startswith(("torch", "pandas", "chdb", "sentence-transformers", "scikit-learn")), (
            requirement
        )
    assert "Provides-Extra: embedded" in metadata and "Provides-Extra: analyzers" in metadata


def test_instrumenting_an_app_imports_nothing_heavy() -> None:
    script = (
        "import sys\n"
        "from llmpulse.agent import observe, configure\n"
        "@observe\n"
        "def f():\n    return 1\n"
        "f()\n"
        f"print(','.join(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
    )
    result = subprocess.run([PYTHON, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


CLIENT_LIBRARIES = ("openai", "anthropic", "litellm", "langchain_core", "llama_index", "httpx2")


def test_the_integrations_import_no_client_library_until_one_is_instrumented(wheel: Path, tmp_path: Path) -> None:
    """``llmpulse.agent`` and the integration modules of the built wheel load without the libraries they patch;
    ``instrument("openai")`` is what imports openai."""
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(tmp_path / "site")
    script = (
        "import sys\n"
        f"sys.path.insert(0, {str(tmp_path / 'site')!r})\n"
        "import llmpulse.agent, llmpulse.agent.integrations\n"
        "import llmpulse.agent.integrations.openai, llmpulse.agent.integrations.anthropic\n"
        "import llmpulse.agent.integrations.litellm, llmpulse.agent.integrations.wrappers\n"
        "from llmpulse.agent.enrich.prices import PriceTable\n"
        "PriceTable.default().lookup('gpt-4o')\n"
        "assert llmpulse.agent.__file__.startswith(sys.path[0]), llmpulse.agent.__file__\n"
        f"print(','.join(sorted(m for m in {CLIENT_LIBRARIES!r} if m in sys.modules)))\n"
        "llmpulse.agent.instrument('openai')\n"
        "print('openai' in sys.modules)\n"
    )
    result = subprocess.run([PYTHON, "-I", "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["", "True"]
