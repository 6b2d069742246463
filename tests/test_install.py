"""A non-editable install works: the wheel carries the package's resources, and the ``nvos``
command and the workflow run from another folder against the installed package (issue 17.4).

The wheel is built offline from a copy of the sources (``pip wheel --no-deps --no-build-isolation
--no-index``: setuptools of the running environment, nothing downloaded) and installed with
``pip install --no-deps --target`` into a fresh venv (``--without-pip``) whose only other path is a
``.pth`` line naming the running environment's site-packages for the dependencies. A path listed
in a ``.pth`` file is not scanned for ``.pth`` files itself, so the editable install of the source
tree stays invisible; the test checks that ``nvos`` is imported from the wheel's files.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from nvos.config import DEFAULT_CONFIG, SCHEMA
from nvos.resources import resource_path

REPO = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "README.md", "src", "config")
DEMO_CLIPS = 8  # the demo's smallest useful size: 1 val clip, so the layer below trains once


def run(command: list[str | Path], cwd: Path, timeout: float = 120) -> str:
    """Run ``command`` in ``cwd`` without PYTHONPATH (no source tree on the path); its stdout."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    done = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, f"{command} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout + done.stderr


def build_wheel(tmp: Path) -> Path:
    """Build the wheel from a copy of the sources (the checkout gets no build folders); links stay
    links, as in a checkout."""
    source = tmp / "source"
    source.mkdir()
    for name in SOURCES:
        if (REPO / name).is_dir():
            skip = shutil.ignore_patterns("*.egg-info", "__pycache__")
            shutil.copytree(REPO / name, source / name, symlinks=True, ignore=skip)
        else:
            shutil.copy2(REPO / name, source / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    run([*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", tmp, source], tmp)
    (wheel,) = tmp.glob("nvos-*.whl")
    return wheel


def install(wheel: Path, tmp: Path) -> tuple[Path, Path]:
    """A fresh venv with only the wheel installed (and this environment's dependencies on its
    path); returns (its python, the folder the wheel went to)."""
    venv = tmp / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", venv], tmp)
    python = venv / "bin" / "python"
    target = Path(
        run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], tmp)
    )
    target = Path(str(target).strip())
    (target / "dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    pip = [python, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    run([*pip, "install", "--no-deps", "--no-index", "--target", target, wheel], tmp)
    return python, target


def test_shipped_config_is_the_workflow_config() -> None:
    """The package's config and schema are the workflow's ``config/`` files (links to them)."""
    for name, shipped in (("config.yaml", DEFAULT_CONFIG), ("schema.yaml", SCHEMA)):
        assert shipped.resolve() == (REPO / "config" / name).resolve(), name
    assert resource_path("clip").joinpath("nvos-tiny-vit.json").is_file()
    assert resource_path("demo_vocabulary.yaml").is_file()


@pytest.mark.slow  # about 25 s: a wheel build, an install, the demo's data, two snakemake runs
def test_wheel_runs_the_command_and_the_workflow_from_another_folder(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path)
    python, target = install(wheel, tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    where = run(
        [python, "-c", "import nvos, nvos.config as c; print(nvos.__file__, c.DEFAULT_CONFIG)"],
        elsewhere,
    ).split()
    assert all(Path(path).is_relative_to(target) for path in where), where
    shipped = target / "nvos" / "resources"
    for name in ("config.yaml", "schema.yaml"):  # copies of the workflow's files, not links
        assert not (shipped / name).is_symlink()
        assert (shipped / name).read_bytes() == (REPO / "config" / name).read_bytes(), name
    assert (shipped / "clip" / "nvos-tiny-vit.json").is_file()

    nvos = target / "bin" / "nvos"  # the console script, its shebang the venv's python
    assert "demo-data" in run([nvos, "--help"], elsewhere)
    run([nvos, "demo-data", "demo", "--clips", DEMO_CLIPS], elsewhere)
    manifest = elsewhere / "demo" / "manifest.jsonl"
    assert len(manifest.read_text().splitlines()) == DEMO_CLIPS

    layer = elsewhere / "layer.yaml"
    one_restart = {"restarts": 1, "val_every": 0}  # one val clip cannot select among restarts
    layer.write_text(
        yaml.safe_dump({"dataset": {"manifest": str(manifest)}, "rosa": {"train": one_restart}})
    )
    snakemake = [python, "-m", "snakemake", "-s", REPO / "Snakefile", "--cores", "1"]
    config = ["--configfile", REPO / "config" / "config.yaml", layer]
    planned = run([*snakemake, "-n", *config], elsewhere)
    assert "report" in planned and "train" in planned
    run([*snakemake, "dataset", *config], elsewhere)  # one real job: a workflow script
    assert (elsewhere / "results" / "demo" / "clips.parquet").is_file()
