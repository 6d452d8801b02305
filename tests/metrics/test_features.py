"""Feature extractors: the shipped digits CNN, the generic pipeline and the FID Inception-v3."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from fastdensity.datasets import load_digits
from fastdensity.metrics._features import class_probabilities, digits_weights_path, features

torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[2]
# The accuracy stated in DigitsClassifier's docstring (356 of 360 test images).
DOCUMENTED_TEST_ACCURACY = 356 / 360


@pytest.fixture(scope="module")
def digits_test():
    return load_digits(split="test", return_labels=True)


# ---------------------------------------------------------------------------------------------
# torch stays optional
# ---------------------------------------------------------------------------------------------

def test_import_without_torch_and_clear_error():
    code = textwrap.dedent("""
        import sys

        class NoTorch:  # makes `import torch` raise ImportError, as when torch is not installed
            def find_spec(self, name, path=None, target=None):
                if name == "torch" or name.startswith("torch."):
                    raise ImportError("No module named 'torch'")

        sys.meta_path.insert(0, NoTorch())
        import fastdensity.metrics._features as f
        try:
            f.features([[0.0]])
        except ImportError as exc:
            assert "pip install torch" in str(exc), exc
        else:
            raise SystemExit("no ImportError")
        try:
            f.DigitsClassifier
        except ImportError as exc:
            assert "pip install torch" in str(exc), exc
        else:
            raise SystemExit("no ImportError")
        assert "torch" not in sys.modules
    """)
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


# ---------------------------------------------------------------------------------------------
# the shipped digits CNN
# ---------------------------------------------------------------------------------------------

def test_shipped_weights_file():
    path = digits_weights_path()
    assert path.is_file()
    assert len(path.read_bytes()) < 300_000
    state = torch.load(str(path), map_location="cpu", weights_only=True)
    assert all(v.dtype == torch.float32 for v in state.values())
    from fastdensity.metrics._features import DigitsClassifier

    assert set(state) == set(DigitsClassifier().state_dict())


def test_shipped_weights_reach_documented_accuracy(digits_test):
    from fastdensity.metrics._features import DigitsClassifier, load_digits_classifier

    X, y = digits_test
    assert f"{100 * DOCUMENTED_TEST_ACCURACY:.1f} %" in DigitsClassifier.__doc__
    model = load_digits_classifier()
    assert not model.training
    with torch.no_grad():
        predicted = model(torch.from_numpy(X).unsqueeze(1)).argmax(dim=1).numpy()
    assert np.mean(predicted == y) >= DOCUMENTED_TEST_ACCURACY - 0.01
    probs = class_probabilities(X)
    assert np.mean(probs.argmax(axis=1) == y) >= DOCUMENTED_TEST_ACCURACY - 0.01


def _numpy_digits_cnn(state, X):
    """Independent NumPy forward pass of the digits CNN: returns (features, logits)."""
    w = {k: v.numpy().astype(np.float64) for k, v in state.items()}

    def conv3x3_relu(x, weight, bias):  # x (n, c, h, w); 'same' padding
        n, _, h, wd = x.shape
        padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
        out = np.zeros((n, weight.shape[0], h, wd))
        for dy in range(3):
            for dx in range(3):
                out += np.einsum("nchw,oc->nohw", padded[:, :, dy:dy + h, dx:dx + wd], weight[:, :, dy, dx])
        return np.maximum(out + bias[None, :, None, None], 0)

    def pool2(x):
        n, c, h, wd = x.shape
        return x.reshape(n, c, h // 2, 2, wd // 2, 2).max(axis=(3, 5))

    x = X.astype(np.float64).reshape(-1, 1, 8, 8)
    x = pool2(conv3x3_relu(x, w["conv1.weight"], w["conv1.bias"]))
    x = pool2(conv3x3_relu(x, w["conv2.weight"], w["conv2.bias"]))
    feats = x.reshape(len(x), -1) @ w["fc1.weight"].T + w["fc1.bias"]
    logits = np.maximum(feats, 0) @ w["fc2.weight"].T + w["fc2.bias"]
    return feats, logits


def test_digits_features_match_numpy_oracle(digits_test):
    X = digits_test[0][:50]
    state = torch.load(str(digits_weights_path()), map_location="cpu", weights_only=True)
    ref_features, ref_logits = _numpy_digits_cnn(state, X)
    got = features(X)
    assert isinstance(got, np.ndarray) and got.dtype == np.float64 and got.shape == (50, 64)
    np.testing.assert_allclose(got, ref_features, rtol=1e-4, atol=1e-4)
    from scipy.special import softmax

    np.testing.assert_allclose(class_probabilities(X), softmax(ref_logits, axis=1), rtol=1e-4, atol=1e-6)


def test_a_digits_classifier_instance_equals_the_named_extractor(digits_test):
    from fastdensity.metrics._features import load_digits_classifier

    X = digits_test[0][:30]
    model = load_digits_classifier()
    model.train()
    np.testing.assert_array_equal(features(X, model), features(X))
    np.testing.assert_array_equal(class_probabilities(X.reshape(30, 64), model), class_probabilities(X))
    assert model.training


def test_digits_feature_columns_all_vary(digits_test):
    assert np.all(features(digits_test[0]).std(axis=0) > 0)


def test_input_layouts_and_types_agree(digits_test):
    X = digits_test[0][:40]
    ref = features(X)
    np.testing.assert_array_equal(features(X[:, None]), ref)
    np.testing.assert_array_equal(features(X.reshape(40, 64)), ref)
    np.testing.assert_array_equal(features(X.astype(np.float64)), ref)
    got = features(torch.from_numpy(X))
    assert isinstance(got, torch.Tensor) and got.dtype == torch.float64 and got.device.type == "cpu"
    np.testing.assert_array_equal(got.numpy(), ref)


@pytest.mark.parametrize("batch_size", [1, 7, 64])
def test_batch_size_changes_only_rounding(digits_test, batch_size):
    X = digits_test[0][:100]
    ref = features(X, batch_size=1000)
    np.testing.assert_allclose(features(X, batch_size=batch_size), ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(class_probabilities(X, batch_size=batch_size), class_probabilities(X),
                               rtol=1e-5, atol=1e-7)


# ---------------------------------------------------------------------------------------------
# any callable or module
# ---------------------------------------------------------------------------------------------

def test_plain_callable_gets_channel_dimension_and_numpy_output_works():
    X = np.random.default_rng(0).random((10, 5, 6))
    seen = []

    def mean_rows(batch):
        seen.append(tuple(batch.shape))
        return batch.numpy().mean(axis=3)  # a numpy result is accepted too

    got = features(X, mean_rows, batch_size=4)
    assert seen == [(4, 1, 5, 6), (4, 1, 5, 6), (2, 1, 5, 6)]
    np.testing.assert_allclose(got, X.mean(axis=2), rtol=1e-6)


def test_module_runs_in_eval_mode_without_grad_and_mode_is_restored():
    gen = torch.Generator().manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Dropout(0.5), torch.nn.Linear(16, 3))
    torch.nn.init.normal_(module[2].weight, generator=gen)
    module.train()
    X = torch.rand(9, 1, 4, 4, generator=gen, requires_grad=True)
    got = features(X, module, batch_size=4)
    assert module.training  # restored
    assert not got.requires_grad
    module.eval()
    with torch.no_grad():
        ref = module(X).double()
    # Float32 forward passes of 4 rows and of 9 rows may take different GEMM kernels, so a
    # different summation order (one element differed by 2.4e-7 on another CPU). Each output is a
    # 16-term dot product plus a bias in float32, within 17·u·(|W||x| + |b|) of the exact value
    # (u = eps/2, the standard bound for a sum of products); two such results are within twice that.
    W, b = module[2].weight.detach().double(), module[2].bias.detach().double()
    x = X.detach().reshape(len(X), -1).double()
    bound = 17 * torch.finfo(torch.float32).eps * (x.abs() @ W.abs().T + b.abs())
    assert got.shape == ref.shape and got.dtype == torch.float64
    assert torch.all((got - ref).abs() <= bound), float(((got - ref).abs() / bound).max())


def test_module_on_another_device_is_refused():
    module = torch.nn.Linear(4, 2, device="meta")
    with pytest.raises(ValueError, match="parameters are on meta but the images go to cpu"):
        features(np.zeros((3, 4)), module, device="cpu")


def test_class_probabilities_of_a_callable():
    logits = np.random.default_rng(1).normal(size=(12, 5)) * 30  # large logits: the softmax must not overflow
    probs = class_probabilities(logits, lambda b: b.double(), batch_size=5)
    from scipy.special import softmax

    # Callables receive float32 batches; the softmax itself is taken in float64.
    expected = softmax(logits.astype(np.float32).astype(np.float64), axis=1)
    np.testing.assert_allclose(probs, expected, rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-12)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"extractor": "inception"}, ValueError, "extractor must be 'digits', an InceptionV3Features instance"),
    ({"extractor": 3}, TypeError, "extractor must be 'digits' or a callable"),
    ({"batch_size": 0}, ValueError, "batch_size must be a positive integer"),
])
def test_bad_arguments(digits_test, kwargs, error, match):
    with pytest.raises(error, match=match):
        features(digits_test[0][:4], **kwargs)


def test_bad_images(digits_test):
    X = digits_test[0][:4]
    with pytest.raises(ValueError, match=r"finite values in \[0, 1\]"):
        features(X * 16)
    with pytest.raises(ValueError, match=r"finite values in \[0, 1\]"):
        features(np.where(X > 0.5, np.nan, X))
    with pytest.raises(ValueError, match="the digits extractor needs 8×8 images"):
        features(np.zeros((4, 28, 28)))
    with pytest.raises(ValueError, match="non-empty array of shape"):
        features(np.zeros((0, 8, 8)))
    with pytest.raises(TypeError, match="images must be real numbers"):
        features(np.array([["a"]]))


# ---------------------------------------------------------------------------------------------
# the FID Inception-v3, with random weights saved to a temporary file
# ---------------------------------------------------------------------------------------------

def _random_inception_state(seed=0):
    """A random state dict whose activations neither vanish nor explode (He-initialised convolutions,
    random batch-norm statistics), so that the tests see real numbers flowing through."""
    from fastdensity.metrics._features import InceptionV3Features

    gen = torch.Generator().manual_seed(seed)
    with pytest.warns(UserWarning, match="random weights"):
        net = InceptionV3Features(None)
    state = {}
    for key, value in net.state_dict().items():
        if key.endswith("num_batches_tracked"):
            continue  # like the pre-0.4 FID weights file
        if key.endswith("conv.weight") or key == "fc.weight":
            fan_in = value[0].numel()
            value = torch.randn(value.shape, generator=gen) * (2.0 / fan_in) ** 0.5
        elif key.endswith("running_var"):
            value = 0.5 + torch.rand(value.shape, generator=gen)
        elif key.endswith(("running_mean", "bn.bias", "fc.bias")):
            value = 0.1 * torch.randn(value.shape, generator=gen)
        elif key.endswith("bn.weight"):
            value = 0.8 + 0.4 * torch.rand(value.shape, generator=gen)
        state[key] = value.contiguous()
    return state


@pytest.fixture(scope="module")
def inception_file(tmp_path_factory):
    state = _random_inception_state()
    path = tmp_path_factory.mktemp("inception") / "pt_inception-random.pth"
    torch.save(state, path)
    return path, state


@pytest.fixture(scope="module")
def inception(inception_file):
    from fastdensity.metrics._features import InceptionV3Features

    torch.set_num_threads(1)
    return InceptionV3Features(inception_file[0])


@pytest.fixture(scope="module")
def small_images():
    return np.random.default_rng(5).random((3, 12, 10)).astype(np.float32)


def test_inception_parameter_count_matches_keras():
    from fastdensity.metrics._inception import InceptionV3Features

    with pytest.warns(UserWarning, match="random weights"):
        net = InceptionV3Features(None)
    conv = sum(m.weight.numel() for m in net.modules() if isinstance(m, torch.nn.Conv2d))
    bn = sum(m.num_features for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d))
    # Keras' InceptionV3(include_top=False) has 21,802,784 parameters: convolutions without bias
    # plus three per batch-norm channel (beta, moving mean, moving variance; no scale).
    assert conv + 3 * bn == 21_802_784
    assert tuple(net.fc.weight.shape) == (1008, 2048)


def test_inception_key_names_round_trip(inception_file, inception):
    path, state = inception_file
    loaded = inception.state_dict()
    assert "Mixed_7c.branch3x3dbl_3b.bn.running_var" in loaded and "Conv2d_1a_3x3.conv.weight" in loaded
    assert not any(k.startswith("AuxLogits") for k in loaded)
    assert set(state) == {k for k in loaded if not k.endswith("num_batches_tracked")}
    for key, value in state.items():
        assert torch.equal(loaded[key], value), key


def test_inception_features_shapes_and_determinism(inception_file, inception, small_images):
    from fastdensity.metrics._features import InceptionV3Features

    got = features(small_images, inception)
    assert got.shape == (3, 2048) and got.dtype == np.float64
    assert np.all(np.isfinite(got)) and got.std() > 0
    np.testing.assert_array_equal(features(small_images, inception), got)
    np.testing.assert_array_equal(features(small_images, InceptionV3Features(inception_file[0])), got)
    probs = class_probabilities(small_images, inception)
    assert probs.shape == (3, 1008)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-12)


def test_inception_batch_size_and_grey_channels(inception, small_images):
    ref = features(small_images, inception, batch_size=3)
    np.testing.assert_allclose(features(small_images, inception, batch_size=1), ref, rtol=1e-4, atol=1e-5)
    rgb = np.repeat(small_images[:, None], 3, axis=1)
    np.testing.assert_allclose(features(rgb, inception, batch_size=3), ref, rtol=1e-5, atol=1e-6)


def _bilinear_numpy(image, size):
    """Half-pixel-centre bilinear resize without antialiasing (PyTorch's align_corners=False)."""
    def axis(n_in):
        src = np.maximum((np.arange(size) + 0.5) * n_in / size - 0.5, 0.0)
        i0 = np.minimum(np.floor(src).astype(int), n_in - 1)
        return i0, np.minimum(i0 + 1, n_in - 1), src - i0

    r0, r1, wr = axis(image.shape[0])
    c0, c1, wc = axis(image.shape[1])
    top = image[r0][:, c0] * (1 - wc) + image[r0][:, c1] * wc
    bottom = image[r1][:, c0] * (1 - wc) + image[r1][:, c1] * wc
    return top * (1 - wr[:, None]) + bottom * wr[:, None]


def test_inception_preprocessing_matches_pytorch_fid(small_images):
    from fastdensity.metrics._inception import InceptionV3Features

    out = InceptionV3Features.preprocess(torch.from_numpy(small_images).double())
    assert tuple(out.shape) == (3, 3, 299, 299)
    expected = 2 * _bilinear_numpy(small_images[1].astype(np.float64), 299) - 1
    for channel in range(3):
        np.testing.assert_allclose(out[1, channel].numpy(), expected, rtol=1e-10, atol=1e-12)


def test_inception_fid_pooling_patches():
    from scipy.ndimage import maximum_filter

    from fastdensity.metrics._inception import _avg_pool_no_pad, _InceptionE

    # TensorFlow's average pool leaves the zero padding out: a constant stays constant at the border.
    torch.testing.assert_close(_avg_pool_no_pad(torch.ones(1, 2, 5, 5)), torch.ones(1, 2, 5, 5))
    # Mixed_7c's pool branch is a 3×3 max pool (stride 1, padding 1) before its 1×1 convolution.
    block = _InceptionE(8, pool="max").eval()
    x = torch.randn(2, 8, 5, 5, generator=torch.Generator().manual_seed(0)).double()
    block = block.double()
    with torch.no_grad():
        got = block(x)[:, -192:]
        pooled = maximum_filter(x.numpy(), size=(1, 1, 3, 3), mode="constant", cval=-np.inf)
        expected = block.branch_pool(torch.from_numpy(pooled))
    torch.testing.assert_close(got, expected)


def test_inception_weights_errors(tmp_path, inception_file):
    from fastdensity.metrics._features import InceptionV3Features

    with pytest.raises(FileNotFoundError, match="never downloads"):
        InceptionV3Features(tmp_path / "missing.pth")
    state = dict(inception_file[1])
    del state["Mixed_6b.branch1x1.conv.weight"]
    state["AuxLogits.fc.weight"] = torch.zeros(3)
    torch.save(state, tmp_path / "keys.pth")
    with pytest.raises(ValueError, match=r"1 missing keys \['Mixed_6b.branch1x1.conv.weight'\], "
                                         r"1 unexpected keys \['AuxLogits.fc.weight'\]"):
        InceptionV3Features(tmp_path / "keys.pth")
    state = dict(inception_file[1])
    state["fc.weight"] = torch.zeros(1000, 2048)
    torch.save(state, tmp_path / "shape.pth")
    with pytest.raises(ValueError, match=r"fc.weight: \(1000, 2048\) instead of \(1008, 2048\)"):
        InceptionV3Features(tmp_path / "shape.pth")
    torch.save([torch.zeros(2)], tmp_path / "list.pth")
    with pytest.raises(ValueError, match="does not hold a state dict"):
        InceptionV3Features(tmp_path / "list.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="cannot load"):
        InceptionV3Features(tmp_path / "junk.pth")


def test_inception_rejects_bad_images(inception):
    with pytest.raises(ValueError, match=r"finite values in \[0, 1\]"):
        features(np.full((1, 4, 4), 255.0), inception)
    with pytest.raises(ValueError, match=r"needs images \(n, h, w\), \(n, 1, h, w\) or \(n, 3, h, w\)"):
        features(np.zeros((1, 2, 4, 4)), inception)


# ---------------------------------------------------------------------------------------------
# the training script; GPU
# ---------------------------------------------------------------------------------------------

def _training_script():
    import importlib.util

    spec = importlib.util.spec_from_file_location("train_digits_cnn", ROOT / "scripts" / "train_digits_cnn.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_training_is_deterministic_and_writes_atomically(tmp_path):
    script = _training_script()
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    try:
        first, info = script.train(seed=3, max_epochs=2)
        second, _ = script.train(seed=3, max_epochs=2)
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)
    assert info["epochs_run"] == 2
    for key, value in first.state_dict().items():
        assert torch.equal(value, second.state_dict()[key]), key
    target = tmp_path / "digits.pt"
    script.save_weights(first, target)
    assert [p.name for p in tmp_path.iterdir()] == ["digits.pt"]  # no temporary file left behind
    loaded = torch.load(target, weights_only=True)
    assert all(torch.equal(loaded[k], v) for k, v in first.state_dict().items())


@pytest.mark.slow
def test_full_training_reaches_documented_accuracy():
    script = _training_script()
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    try:
        model, info = script.train()
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)
    assert info["test_accuracy"] >= DOCUMENTED_TEST_ACCURACY - 0.01
    shipped = torch.load(str(digits_weights_path()), map_location="cpu", weights_only=True)
    # Same torch on the same kind of CPU gives the shipped weights bit for bit; elsewhere rounding may differ.
    close = all(torch.allclose(shipped[k], v, rtol=1e-3, atol=1e-4) for k, v in model.state_dict().items())
    if not close:
        pytest.xfail("retrained weights differ from the shipped ones beyond rounding (other torch or CPU)")


@pytest.mark.gpu
def test_features_on_cuda_tensors_stay_on_the_device(digits_test):
    if not torch.cuda.is_available():
        pytest.skip("needs torch with CUDA")
    X = digits_test[0][:64]
    ref = features(X)
    got = features(torch.from_numpy(X).cuda(), batch_size=16)
    assert got.device.type == "cuda" and got.dtype == torch.float64
    np.testing.assert_allclose(got.cpu().numpy(), ref, rtol=1e-4, atol=1e-4)
    from_numpy = features(X, device="cuda")
    assert isinstance(from_numpy, np.ndarray)
    np.testing.assert_allclose(from_numpy, ref, rtol=1e-4, atol=1e-4)
