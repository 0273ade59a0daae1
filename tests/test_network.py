"""The network against an independent transcription of the spec, finite differences,
and its guarantees: seeding, epoch prefixes, batched query, persistence."""
from __future__ import annotations

import json
import pickle
import zipfile

import numpy as np
import pytest
from scipy.special import expit

from mynn import Network, NetworkConfig, TrainingDivergedError, WeightsFileError, fit
from mynn.train import _epoch_minibatch


# ---- an independent reference: the spec's formulas, record by record ------------------
def spec_train(cfg: NetworkConfig, pixels: np.ndarray, labels: np.ndarray):
    """The spec, line by line: initial weights, scaling, targets, per-record updates."""
    rng = np.random.default_rng(cfg.seed)
    h_n = cfg.hidden_nodes
    wih = rng.normal(0.0, pow(h_n, -0.5), (h_n, 784))
    who = rng.normal(0.0, pow(10, -0.5), (10, h_n))
    for _ in range(cfg.epochs):
        for p, label in zip(pixels, labels):
            x = np.asarray(p, dtype=float) / 255.0 * 0.99 + 0.01
            t = np.zeros(10) + 0.01
            t[int(label)] = 0.99
            hidden = expit(np.dot(wih, x))
            out = expit(np.dot(who, hidden))
            e_o = t - out
            e_h = np.dot(who.T, e_o)
            who += cfg.learning_rate * np.dot((e_o * out * (1.0 - out)).reshape(-1, 1),
                                              hidden.reshape(1, -1))
            wih += cfg.learning_rate * np.dot((e_h * hidden * (1.0 - hidden)).reshape(-1, 1),
                                              x.reshape(1, -1))
    return wih, who


def with_edge_records(pixels):
    """The 100 records with a few the sparse kernel treats specially put in front."""
    edge = np.zeros((5, 784), dtype=np.uint8)  # record 0: no non-zero pixel at all
    edge[1] = 255  # every pixel non-zero
    edge[2, 783] = 1  # one non-zero, the last pixel
    edge[3, [0, 1, 2]] = [255, 7, 1]  # three (fewer than the kernel's group of four)
    edge[4, ::3] = 200  # 262: groups of four and a remainder
    return np.concatenate([edge, pixels])


@pytest.mark.parametrize("hidden", [3, 17, 100, 130])
@pytest.mark.parametrize("inputs", ["mnist", "edge"])
def test_fast_path_matches_spec_transcription(small_train, hidden, inputs):
    pixels, labels = small_train
    if inputs == "edge":
        pixels, labels = with_edge_records(pixels), np.concatenate([[3, 1, 4, 1, 5], labels])
    cfg = NetworkConfig(hidden_nodes=hidden, learning_rate=0.3, epochs=3, seed=hidden)  # 300 updates
    wih, who = spec_train(cfg, pixels, labels)
    net, _ = fit(cfg, pixels, labels)
    assert np.max(np.abs(net.wih - wih)) < 1e-9
    assert np.max(np.abs(net.who - who)) < 1e-9


def test_reference_impl_matches_spec(small_train):
    pixels, labels = small_train
    cfg = NetworkConfig(hidden_nodes=20, learning_rate=0.2, epochs=2, seed=3)
    wih, who = spec_train(cfg, pixels, labels)
    net, _ = fit(cfg, pixels, labels, impl="reference")
    np.testing.assert_allclose(net.wih, wih, rtol=0, atol=1e-12)
    np.testing.assert_allclose(net.who, who, rtol=0, atol=1e-12)


def test_float32_option_stays_close_to_float64(small_train):
    pixels, labels = small_train
    n64, _ = fit(NetworkConfig(hidden_nodes=50, learning_rate=0.3, epochs=2), pixels, labels)
    n32, _ = fit(NetworkConfig(hidden_nodes=50, learning_rate=0.3, epochs=2, dtype="float32"),
                 pixels, labels)
    assert n32.wih.dtype == np.float32 and n32.who.dtype == np.float32
    assert np.max(np.abs(n32.wih - n64.wih)) < 1e-4


def test_initial_weights_follow_the_book():
    net = Network.initial(NetworkConfig(hidden_nodes=400, seed=5))
    assert net.wih.shape == (400, 784) and net.who.shape == (10, 400)
    assert abs(net.wih.std() - 400 ** -0.5) < 0.002  # std uses the size of the next layer
    assert abs(net.who.std() - 10 ** -0.5) < 0.02
    assert abs(net.wih.mean()) < 0.002


# ---- gradients --------------------------------------------------------------------------
def one_step(cfg, x_pixels, label):
    start = Network.initial(cfg)
    net, _ = fit(cfg, x_pixels[None, :], np.array([label]), network=start)
    return start, net


def loss(wih, who, x, t):
    o = expit(who @ expit(wih @ x))
    return 0.5 * np.sum((t - o) ** 2)


def fd_grad(f, w, eps=1e-6):
    g = np.zeros_like(w)
    for idx in np.ndindex(w.shape):
        old = w[idx]
        w[idx] = old + eps
        up = f()
        w[idx] = old - eps
        down = f()
        w[idx] = old
        g[idx] = (up - down) / (2 * eps)
    return g


@pytest.fixture
def record(small_train):
    pixels, labels = small_train
    p = pixels[0].copy()
    x = p / 255.0 * 0.99 + 0.01
    t = np.full(10, 0.01)
    t[labels[0]] = 0.99
    return p, int(labels[0]), x, t


def test_who_update_is_minus_lr_times_the_gradient(record):
    p, label, x, t = record
    cfg = NetworkConfig(hidden_nodes=6, learning_rate=0.25, epochs=1, seed=2)
    start, net = one_step(cfg, p, label)
    wih, who = start.wih.copy(), start.who.copy()
    grad = fd_grad(lambda: loss(wih, who, x, t), who)
    np.testing.assert_allclose(net.who - start.who, -cfg.learning_rate * grad, rtol=1e-5, atol=1e-10)


def test_wih_update_is_the_books_rule_not_the_gradient(record):
    """Pinned on purpose: the book sends e_o, not e_o*o*(1-o), back to the hidden layer."""
    p, label, x, t = record
    cfg = NetworkConfig(hidden_nodes=6, learning_rate=0.25, epochs=1, seed=2)
    start, net = one_step(cfg, p, label)
    wih, who = start.wih.copy(), start.who.copy()
    # sub-sample 40 input columns to keep the finite differences cheap
    cols = np.linspace(0, 783, 40).astype(int)
    grad = np.zeros_like(wih)
    for c in cols:
        for r in range(wih.shape[0]):
            old = wih[r, c]
            wih[r, c] = old + 1e-6
            up = loss(wih, who, x, t)
            wih[r, c] = old - 1e-6
            down = loss(wih, who, x, t)
            wih[r, c] = old
            grad[r, c] = (up - down) / 2e-6
    delta = (net.wih - start.wih)[:, cols]
    exact = -cfg.learning_rate * grad[:, cols]
    assert not np.allclose(delta, exact, rtol=1e-3, atol=1e-9)  # the book's rule is not the gradient
    h = expit(start.wih @ x)
    e_o = t - expit(start.who @ h)
    book = cfg.learning_rate * np.outer((start.who.T @ e_o) * h * (1 - h), x)[:, cols]
    np.testing.assert_allclose(delta, book, rtol=1e-9, atol=1e-13)
    # the named option "exact" is the gradient
    ecfg = NetworkConfig(hidden_nodes=6, learning_rate=0.25, epochs=1, seed=2, backprop="exact")
    estart, enet = one_step(ecfg, p, label)
    np.testing.assert_allclose((enet.wih - estart.wih)[:, cols], exact, rtol=1e-5, atol=1e-10)


# ---- behaviour --------------------------------------------------------------------------
def test_training_lowers_the_error_and_returns_history(small_train, small_test):
    pixels, labels = small_train
    seen = []
    net, hist = fit(NetworkConfig(hidden_nodes=100, learning_rate=0.3, epochs=5), pixels, labels,
                    test=small_test, callback=lambda s, n: seen.append(s.epoch))
    assert [s.epoch for s in hist] == [1, 2, 3, 4, 5] == seen
    assert hist[-1].train_mse < hist[0].train_mse * 0.7
    assert all(0.0 <= s.performance <= 1.0 for s in hist)
    assert net.performance(pixels / 255 * 0.99 + 0.01, labels) > 0.9  # it learns its training set


def test_same_seed_is_bit_identical_and_seeds_differ(small_train):
    pixels, labels = small_train
    cfg = NetworkConfig(hidden_nodes=30, learning_rate=0.3, epochs=2, seed=11)
    a, _ = fit(cfg, pixels, labels)
    b, _ = fit(cfg, pixels, labels)
    assert a.wih.tobytes() == b.wih.tobytes() and a.who.tobytes() == b.who.tobytes()
    c, _ = fit(NetworkConfig(hidden_nodes=30, learning_rate=0.3, epochs=2, seed=12), pixels, labels)
    assert not np.array_equal(a.wih, c.wih)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_fast_kernel_does_not_depend_on_where_arrays_sit(small_train, dtype):
    """Compiled loops may pick a vector or a scalar path by the arrays' addresses; with
    reassociation allowed the two could round differently. Same inputs at other offsets
    in memory must give the same bits."""
    from mynn.kernels import train_epoch
    from mynn.train import _SparseInputs
    from mynn.encoding import INPUT_OFFSET, make_targets

    pixels, labels = small_train
    net = Network.initial(NetworkConfig(hidden_nodes=37, seed=2, dtype=dtype))
    data = _SparseInputs.of(pixels, net.wih.dtype)
    T = make_targets(labels, dtype)

    def at_offset(a, k):  # a copy of a that starts k elements into a larger buffer
        buf = np.zeros(a.size + k, dtype=a.dtype)
        view = buf[k:].reshape(a.shape)
        view[...] = a
        return view

    results = []
    for k in (0, 1, 3):
        wT, who = at_offset(np.ascontiguousarray(net.wih.T), k), at_offset(net.who, k)
        u, c = at_offset(wT.sum(axis=0), k), at_offset(np.zeros(37, dtype), k)
        sse = train_epoch(data.indptr, data.indices, at_offset(data.values, k), data.xsum,
                          data.ysum, at_offset(T, k), wT, who, u, c, 0.3, False, INPUT_OFFSET)
        results.append((sse, wT.tobytes(), who.tobytes(), u.tobytes(), c.tobytes()))
    assert results[0] == results[1] == results[2]


def test_model_after_epoch_e_equals_an_e_epoch_run(small_train, small_test):
    pixels, labels = small_train
    snapshots = {}
    fit(NetworkConfig(hidden_nodes=40, epochs=4, seed=1), pixels, labels, test=small_test,
        callback=lambda s, n: snapshots.__setitem__(s.epoch, n.copy()))
    for e in (1, 2, 3):
        short, _ = fit(NetworkConfig(hidden_nodes=40, epochs=e, seed=1), pixels, labels)
        assert short.wih.tobytes() == snapshots[e].wih.tobytes()
        assert short.who.tobytes() == snapshots[e].who.tobytes()


def test_resume_from_a_checkpoint_equals_an_uninterrupted_run(small_train, tmp_path):
    pixels, labels = small_train
    cfg = NetworkConfig(hidden_nodes=40, epochs=4, seed=1)
    saved = {}
    fit(cfg, pixels, labels, callback=lambda s, n: saved.setdefault(s.epoch, n.save(tmp_path / f"e{s.epoch}.npz")))
    resumed, hist = fit(cfg, pixels, labels, network=Network.load(saved[2]), start_epoch=2)
    full = Network.load(saved[4])
    assert [s.epoch for s in hist] == [3, 4]
    assert resumed.wih.tobytes() == full.wih.tobytes()


def test_query_is_batched_and_equals_per_record(small_train):
    pixels, _ = small_train
    net = Network.initial(NetworkConfig(hidden_nodes=25))
    X = pixels / 255 * 0.99 + 0.01
    batched = net.query(X)
    assert batched.shape == (100, 10)
    singles = np.stack([expit(net.who @ expit(net.wih @ x)) for x in X])
    np.testing.assert_allclose(batched, singles, rtol=1e-12)
    assert net.query(X[0]).shape == (10,)


def test_minibatch_mean_and_sum(small_train):
    pixels, labels = small_train
    X = pixels[:8] / 255 * 0.99 + 0.01
    T = np.full((8, 10), 0.01)
    T[np.arange(8), labels[:8]] = 0.99
    for red, scale in (("sum", 1.0), ("mean", 1 / 8)):
        cfg = NetworkConfig(hidden_nodes=5, learning_rate=0.5, batch_size=8, batch_reduction=red)
        net = Network.initial(cfg)
        w0, v0 = net.wih.copy(), net.who.copy()
        _epoch_minibatch(net, X, T)
        dw, dv = np.zeros_like(w0), np.zeros_like(v0)
        for x, t in zip(X, T):
            h = expit(w0 @ x)
            o = expit(v0 @ h)
            e = t - o
            dv += 0.5 * np.outer(e * o * (1 - o), h)
            dw += 0.5 * np.outer((v0.T @ e) * h * (1 - h), x)
        np.testing.assert_allclose(net.who - v0, scale * dv, rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(net.wih - w0, scale * dw, rtol=1e-10, atol=1e-14)


def test_divergence_stops_with_the_epoch(small_train):
    pixels, labels = small_train
    cfg = NetworkConfig(hidden_nodes=5, epochs=3)
    bad = Network.initial(cfg)
    bad.who[0, 0] = np.nan
    with pytest.raises(TrainingDivergedError, match="epoch 1"):
        fit(cfg, pixels, labels, network=bad)


# ---- config -----------------------------------------------------------------------------
@pytest.mark.parametrize("field,value", [("hidden_nodes", 0), ("learning_rate", -0.1),
                                         ("learning_rate", float("nan")), ("epochs", 0),
                                         ("seed", -1), ("dtype", "float16"), ("batch_size", 0),
                                         ("hidden_nodes", 2.5), ("backprop", "magic")])
def test_config_refuses_bad_values_naming_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        NetworkConfig(**{field: value})


def test_config_round_trip_and_run_name():
    cfg = NetworkConfig(hidden_nodes=200, learning_rate=0.1, epochs=5, seed=0)
    assert NetworkConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert cfg.run_name() == "h200-lr0.1-e5-s0"
    with pytest.raises(ValueError, match="unknown"):
        NetworkConfig.from_dict({"hidden": 3})


# ---- persistence ------------------------------------------------------------------------
def test_save_load_round_trip_predicts_the_same(small_train, tmp_path):
    pixels, labels = small_train
    net, _ = fit(NetworkConfig(hidden_nodes=20, epochs=1, dtype="float32"), pixels, labels)
    path = net.save(tmp_path / "w.npz")
    back = Network.load(path)
    assert back.config == net.config
    X = pixels / 255 * 0.99 + 0.01
    np.testing.assert_array_equal(back.query(X), net.query(X))
    assert [p.name for p in tmp_path.iterdir()] == ["w.npz"]  # no temporary left behind


def _write_npz(path, **arrays):
    np.savez(path, **arrays)
    return path


@pytest.fixture
def good_arrays():
    net = Network.initial(NetworkConfig(hidden_nodes=4))
    return {"wih": net.wih, "who": net.who, "config": np.array(json.dumps(net.config.to_dict()))}


@pytest.mark.parametrize("case,match", [
    ("object", "refused"), ("shape", "shape"), ("dtype", "dtype"), ("nan", "non-finite"),
    ("inf", "non-finite"), ("missing", "expected arrays"), ("config", "invalid config"),
])
def test_load_refuses_bad_weight_files(tmp_path, good_arrays, case, match):
    a = dict(good_arrays)
    if case == "object":
        a["wih"] = np.array([{"evil": 1}], dtype=object)
    elif case == "shape":
        a["wih"] = a["wih"][:, :700]
    elif case == "dtype":
        a["who"] = a["who"].astype(np.float32)
    elif case == "nan":
        a["who"] = a["who"].copy()
        a["who"][0, 0] = np.nan
    elif case == "inf":
        a["wih"] = a["wih"].copy()
        a["wih"][1, 1] = np.inf
    elif case == "missing":
        del a["who"]
    elif case == "config":
        a["config"] = np.array(json.dumps({"hidden_nodes": -4}))
    path = _write_npz(tmp_path / f"{case}.npz", **a)
    with pytest.raises(WeightsFileError, match=match) as err:
        Network.load(path)
    assert str(path) in str(err.value)


def test_load_refuses_a_pickle_and_a_truncated_archive(tmp_path, good_arrays):
    pkl = tmp_path / "model.npz"
    pkl.write_bytes(pickle.dumps(good_arrays))
    with pytest.raises(WeightsFileError, match="model.npz"):
        Network.load(pkl)
    full = _write_npz(tmp_path / "full.npz", **good_arrays)
    cut = tmp_path / "cut.npz"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(WeightsFileError, match="cut.npz"):
        Network.load(cut)
    with pytest.raises(WeightsFileError, match="nope.npz"):
        Network.load(tmp_path / "nope.npz")
    assert zipfile.is_zipfile(full)
