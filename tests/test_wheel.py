"""dailyq as `pip install .` gives it: the wheel, installed into a fresh venv outside the checkout."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import venv
import zipfile
from pathlib import Path

ROOT = Path(__file__).parents[1]
BANK = ROOT / "content"
# What the Dockerfile copies into its builder stage (tests/test_docker_files.py holds it to that).
BUILD_CONTEXT = ("pyproject.toml", "README.md", "bot", "content")
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc")


def declared_packages() -> set[str]:
    return set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])


def test_pyproject_lists_every_package_under_bot():
    on_disk = {
        ".".join(folder.relative_to(ROOT).parts)
        for folder in [ROOT / "bot", *(ROOT / "bot").rglob("*")]
        if folder.is_dir() and any(folder.glob("*.py"))
    }
    missing = on_disk - declared_packages()
    assert not missing, f"add {sorted(missing)} to [tool.setuptools] packages in pyproject.toml"
    assert "bot.content" in declared_packages(), "the bundled bank ships as bot/content"


def build_wheel(into: Path) -> Path:
    """The wheel built from what the Docker image's builder copies, in a copy of those files (a
    build in the checkout would leave build/ there, and could pack stale files from it)."""
    source = into / "source"
    source.mkdir(parents=True)
    for name in BUILD_CONTEXT:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=IGNORED)
        else:
            shutil.copy2(ROOT / name, source / name)
    # No build isolation: setuptools comes from the test extra, so nothing is downloaded.
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(into), str(source)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (wheel,) = into.glob("dailyq-*.whl")
    return wheel


def fresh_venv(path: Path) -> Path:
    """A venv that sees this one's installed dependencies but not its editable dailyq: the .pth line
    adds the site-packages folder without running the .pth files in it (the editable hook)."""
    venv.create(path, with_pip=False)
    site_packages = Path(sysconfig.get_paths(vars={"base": str(path), "platbase": str(path)})["purelib"])
    (site_packages / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return path / "bin"


def test_the_wheel_installed_outside_the_checkout_serves_the_bundled_bank(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path / "dist")
    with zipfile.ZipFile(wheel) as archive:
        shipped = set(archive.namelist())
    bank_files = {f"bot/content/{p.relative_to(BANK).as_posix()}" for p in BANK.rglob("*") if p.is_file()}
    assert bank_files - shipped == set()
    assert {"bot/content/LICENSE", "bot/content/NOTICE.md"} <= shipped

    bin_dir = fresh_venv(tmp_path / "venv")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(bin_dir / "python"), "install", "--quiet",
         "--no-deps", "--no-index", str(wheel)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DAILYQ_", "PYTHON", "VIRTUAL_ENV"))}
    work = tmp_path / "elsewhere"
    work.mkdir()

    def installed(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(args, cwd=work, env=env, capture_output=True, text=True, timeout=60)

    where = installed(str(bin_dir / "python"), "-c", "import bot; print(bot.__file__)")
    assert Path(where.stdout.strip()).is_relative_to(tmp_path / "venv"), where
    checked = installed(str(bin_dir / "dailyq"), "check", "--json")
    assert checked.returncode == 0, checked.stderr
    assert len(json.loads(checked.stdout)["questions"]) == 175
