"""A real package: built as a wheel and installed non-editable into a fresh virtual environment,
``mynn train --source shipped-small`` runs from an unrelated folder with an empty HOME: the
shipped data comes with the package, and the store, cache and runs go to ~/.local/share/mynn."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from mynn.paths import PROJECT_ROOT


def test_a_wheel_installed_in_a_fresh_venv_trains_on_the_shipped_small_data(tmp_path):
    wheels, venv, home, elsewhere = (tmp_path / n for n in ("wheels", "venv", "home", "elsewhere"))
    home.mkdir()
    elsewhere.mkdir()
    # the wheel, built from a copy of the repository (a build writes build/ and *.egg-info into
    # its source folder) with setuptools from the test extra: nothing is downloaded
    source = tmp_path / "source"
    shutil.copytree(PROJECT_ROOT, source, ignore=shutil.ignore_patterns(
        ".venv", ".git", ".cache", ".runs", "mlartifacts", "mlflow.db*", "build", "*.egg-info", "test-artifacts",
        "__pycache__", ".pytest_cache"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(wheels), str(source)], check=True, capture_output=True, text=True)
    wheel = next(wheels.glob("mynn-*.whl"))
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    # the dependencies are this environment's (installing them again would take minutes): its
    # site-packages on the new venv's path, after the venv's own (so its mynn is the wheel's)
    site = Path(subprocess.run([venv / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    (site / "zz-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q",
                    "--no-deps", "--no-index", str(wheel)], check=True, capture_output=True, text=True)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MLFLOW_", "MYNN_", "PREFECT_", "PYTHON", "XDG_"))}
    env.update(HOME=str(home), DO_NOT_TRACK="true", MLFLOW_DISABLE_TELEMETRY="true",
               PREFECT_SERVER_ANALYTICS_ENABLED="false")
    where = subprocess.run([venv / "bin" / "python", "-c", "import mynn, mynn.paths as p; "
                            "print(mynn.__file__); print(p.checkout()); print(p.data_dir())"],
                           cwd=elsewhere, env=env, check=True, capture_output=True, text=True).stdout.split()
    assert where[0].startswith(str(venv)) and where[1] == "None" and where[2].startswith(str(venv))

    try:
        done = subprocess.run([venv / "bin" / "mynn", "train", "--source", "shipped-small", "--hidden-nodes", "10",
                               "--epochs", "1"], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=600)
    finally:  # the background Prefect server it started (in this empty home)
        stop = subprocess.run([venv / "bin" / "mynn", "server", "stop"], cwd=elsewhere, env=env,
                              capture_output=True, text=True, timeout=120)
    assert stop.stdout.startswith("stopped the Prefect server"), stop.stdout + stop.stderr[-3000:]
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout[done.stdout.index("{"):])
    assert summary["model_version"] == "1" and 0.0 <= summary["performance"] <= 1.0
    data_home = home / ".local" / "share" / "mynn"
    assert (data_home / "mlflow.db").is_file() and (data_home / ".runs" / summary["run_id"] / "weights.npz").is_file()
    assert list(elsewhere.iterdir()) == []  # nothing written where the command ran
    assert not list(site.glob(".cache")) and not (site.parent / ".runs").exists()  # nor into the venv
