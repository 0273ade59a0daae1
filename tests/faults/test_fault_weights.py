"""Case 3: weights files that cannot be trusted, refused before use, naming the file: by
``Network.load``, by the MLflow flavour's loader (``tracking.flavour._load_pyfunc``, and
``mlflow.pyfunc.load_model`` on the whole model folder) and by the train task resuming
from a checkpoint. A pickled payload would create a marker file if it were ever unpickled."""
from __future__ import annotations

import json
import pathlib
import pickle
import shutil
import sys

import numpy as np
import pytest
from mlflow import MlflowClient

from tests.faults.faultkit import TEST_10, TRAIN_100, data_folder
from flows import tasks
from mynn.config import NetworkConfig
from mynn.network import Network, WeightsFileError
from tracking import flavour
from tracking.runs import start_run
from tracking.store import ensure_experiment

CONFIG = NetworkConfig(hidden_nodes=4, epochs=2)


class _Payload:
    """Unpickling this creates the file ``marker``: proof that a pickle was (not) loaded."""

    def __init__(self, marker: pathlib.Path):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


def _good_arrays() -> dict[str, np.ndarray]:
    net = Network.initial(CONFIG)
    return {"wih": net.wih, "who": net.who, "config": np.array(json.dumps(CONFIG.to_dict(), sort_keys=True))}


def _corrupt(path: pathlib.Path, case: str, marker: pathlib.Path) -> str:
    """Overwrite the weights file ``path`` with one flaw; return what the error must say."""
    a = _good_arrays()
    if case == "pickled object array":
        a["wih"] = np.array([_Payload(marker)], dtype=object)
        expect = "refused (wih.npy: Object arrays cannot be loaded when allow_pickle=False)"
    elif case == "a pickle, not an npz":
        path.write_bytes(pickle.dumps({"wih": _Payload(marker)}))
        return "not a readable .npz archive (BadZipFile: File is not a zip file)"
    elif case == "truncated archive":
        with open(path, "wb") as fh:
            np.savez(fh, **a)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
        return "not a readable .npz archive"
    elif case == "wrong shape":
        a["wih"] = a["wih"][:, :700]
        expect = "wih has shape (4, 700), expected (4, 784) for H=4"
    elif case == "shape of another H":
        a["who"] = np.zeros((10, 5))
        expect = "who has shape (10, 5), expected (10, 4) for H=4"
    elif case == "wrong dtype":
        a["who"] = a["who"].astype(np.float32)
        expect = "who has dtype float32, expected float64"
    elif case == "integer weights":
        a["wih"] = a["wih"].astype(np.int64)
        expect = "wih has dtype int64, expected float64"
    elif case == "NaN":
        a["who"] = a["who"].copy()
        a["who"][3, 1] = np.nan
        expect = "who has 1 non-finite value(s) (NaN or inf)"
    elif case == "inf":
        a["wih"] = a["wih"].copy()
        a["wih"][0, :2] = [np.inf, -np.inf]
        expect = "wih has 2 non-finite value(s) (NaN or inf)"
    elif case == "an entry missing":
        del a["who"]
        expect = "expected arrays wih, who, config; found ['config', 'wih']"
    elif case in ("declares a huge array", "declares a huge compressed array"):
        # Reliability round two, case 8: a small file whose header declares (1e8, 784): refused
        # from the header, before its data would be read (a bare MemoryError, or 3 GB and 39 s)
        _write_npz_declaring(path, a, "wih", (100_000_000, 784), compress=case.endswith("compressed array"))
        return "wih has shape (100000000, 784), expected (4, 784) for H=4"
    elif case == "declares a huge config":
        _write_npz_declaring(path, a, "config", (), dtype="<U100000000")
        return "config entry is <U100000000 (), expected a JSON string"
    elif case == "an invalid config":
        a["config"] = np.array(json.dumps({**CONFIG.to_dict(), "hidden_nodes": -4}))
        expect = "invalid config: NetworkConfig.hidden_nodes: -4 is below 1"
    else:
        raise AssertionError(case)
    with open(path, "wb") as fh:
        np.savez(fh, **a)  # (an object array is pickled into the archive)
    return expect


CASES = ["pickled object array", "a pickle, not an npz", "truncated archive", "wrong shape", "shape of another H",
         "wrong dtype", "integer weights", "NaN", "inf", "an entry missing", "an invalid config",
         "declares a huge array", "declares a huge compressed array", "declares a huge config"]


def _write_npz_declaring(path: pathlib.Path, arrays: dict, member: str, shape: tuple, dtype: str = "<f8",
                         compress: bool = False) -> None:
    """An .npz of ``arrays`` whose ``member`` has a header declaring ``shape`` and ``dtype``
    followed by only a few bytes of data (a file of a few KB)."""
    import io
    import zipfile

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED) as zf:
        for name, arr in arrays.items():
            buf = io.BytesIO()
            if name == member:
                np.lib.format.write_array_header_2_0(buf, {"descr": dtype, "fortran_order": False, "shape": shape})
                buf.write(b"\0" * 4096)
            else:
                np.lib.format.write_array(buf, arr, allow_pickle=False)
            zf.writestr(f"{name}.npy", buf.getvalue())


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, small_test):
    """A real MLflow model folder of a good network (tracking.flavour.save_model)."""
    root = tmp_path_factory.mktemp("model")
    weights = Network.initial(CONFIG).save(root / "weights.npz")
    return flavour.save_model(weights, root / "model", small_test[0][:2])


def _data_dir(model: pathlib.Path) -> pathlib.Path:
    from mlflow.models import Model

    return model / Model.load(str(model)).flavors["python_function"]["data"]


@pytest.mark.parametrize("case", CASES)
def test_network_load_refuses_naming_the_file(tmp_path, case):
    path, marker = tmp_path / "epoch-002.npz", tmp_path / "UNPICKLED"
    expect = _corrupt(path, case, marker)
    with pytest.raises(WeightsFileError) as info:
        Network.load(path)
    assert str(info.value).startswith(f"{path}: ") and expect in str(info.value), str(info.value)
    assert not marker.exists()


@pytest.mark.parametrize("case", CASES)
def test_the_mlflow_flavour_refuses_a_corrupted_model_naming_the_file(tmp_path, model_dir, case, monkeypatch):
    import mlflow.pyfunc

    model = shutil.copytree(model_dir, tmp_path / "model")
    data = _data_dir(model)
    assert flavour._load_pyfunc(str(data)).predict(np.zeros((1, 784))).shape == (1, 11)  # intact: loads
    weights, marker = data / flavour.WEIGHTS_FILE, tmp_path / "UNPICKLED"
    expect = _corrupt(weights, case, marker)

    with pytest.raises(WeightsFileError) as info:
        flavour._load_pyfunc(str(data))
    assert str(info.value).startswith(f"{weights}: ") and expect in str(info.value), str(info.value)
    # and through MLflow itself, as `mlflow models serve` or pyfunc users would load it
    monkeypatch.setattr(sys, "path", list(sys.path))  # load_model prepends the model's code/ folder
    with pytest.raises(Exception) as info:
        mlflow.pyfunc.load_model(str(model))
    assert str(weights) in str(info.value) and expect in str(info.value), str(info.value)
    assert not marker.exists()


@pytest.mark.parametrize("case", ["pickled object array", "NaN", "wrong shape"])
def test_the_train_task_refuses_a_bad_checkpoint_before_training(tracking_env, tmp_path, case):
    """A retried flow resumes from the run's last checkpoint: a bad one stops it at once."""
    source = data_folder(tmp_path / "source", train=TRAIN_100.read_bytes(), test=TEST_10.read_bytes())
    data = tasks.preprocess.fn(tasks.download.fn(str(source)))
    client, exp = ensure_experiment(tracking_env.uri, "faults")
    run_id = start_run(client, exp, CONFIG)
    run_dir = tmp_path / "run"
    Network.initial(CONFIG).save(run_dir / "checkpoints" / "epoch-001.npz")  # a good one first ...
    bad, marker = run_dir / "checkpoints" / "epoch-002.npz", tmp_path / "UNPICKLED"
    expect = _corrupt(bad, case, marker)  # ... then the latest, bad
    with pytest.raises(WeightsFileError, match=r"epoch-002\.npz: ") as info:
        tasks.train.fn(data, CONFIG, tracking_env.uri, run_id, run_dir=str(run_dir))
    assert expect in str(info.value)
    assert not marker.exists() and not (run_dir / "weights.npz").exists()
    assert MlflowClient(tracking_env.uri).get_metric_history(run_id, "train_mse") == []


def test_a_model_folder_carries_no_code_and_loads_through_the_installed_package(model_dir):
    """Reliability round two, case 10: loading the project's model runs no code from the model
    folder (MLflow would import a folder's bundled code first); the loader is the installed
    tracking.flavour."""
    import mlflow.pyfunc
    from mlflow.models import Model

    from mynn.paths import PROJECT_ROOT

    assert [p for p in model_dir.rglob("*") if p.suffix in (".py", ".pyc", ".pkl")] == []
    assert Model.load(str(model_dir)).flavors["python_function"].get("code") is None
    loaded = mlflow.pyfunc.load_model(str(model_dir))
    impl = loaded._model_impl
    assert type(impl).__module__ == "tracking.flavour"
    assert pathlib.Path(sys.modules["tracking.flavour"].__file__).resolve() == PROJECT_ROOT / "tracking" / "flavour.py"
    assert loaded.predict(np.zeros((1, 784)))["digit"].shape == (1,)
