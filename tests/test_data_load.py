"""load_dataset conventions, digits (against scikit-learn) and the synthetic teacher task."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from earlyphase.empirical.data import DATASET_NAMES, SUBSET_SEED, Dataset, load_dataset
from earlyphase.empirical.data.dataset import measure_indices, one_hot, standardise_per_sample, subset_indices


@settings(max_examples=50, deadline=None)
@given(
    arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(2, 40)), elements=st.floats(-1e3, 1e3)),
    st.integers(1, 5),
)
def test_standardise_matches_numpy_mean_and_std(x, block):
    out = standardise_per_sample(x, block=block)
    assert out.dtype == np.float32 and out.shape == x.shape
    for row, source in zip(out, x, strict=True):
        spread = np.std(source)
        if spread > 1e-6 * max(1.0, np.abs(source).max()):
            np.testing.assert_allclose(row, (source - np.mean(source)) / spread, rtol=1e-5, atol=1e-5)
        elif spread == 0:
            assert np.all(row == 0)


def test_one_hot_rows_and_range():
    y = one_hot(np.array([2, 0, 2]), 3)
    np.testing.assert_array_equal(y, [[0, 0, 1], [1, 0, 0], [0, 0, 1]])
    assert y.dtype == np.float32
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        one_hot(np.array([3]), 3)


def test_subsets_follow_the_documented_permutation_and_are_nested():
    small, large = subset_indices("n_train", 50, 10), subset_indices("n_train", 50, 20)
    np.testing.assert_array_equal(small, np.random.default_rng(SUBSET_SEED).permutation(50)[:10])
    np.testing.assert_array_equal(large[:10], small)
    with pytest.raises(ValueError, match=r"n_train must be <= 50"):
        subset_indices("n_train", 50, 51)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 200), st.data())
def test_measure_indices_distinct_sorted_in_range(n_train, data):
    n_measure = data.draw(st.integers(1, n_train))
    seed = data.draw(st.integers(0, 2**31))
    index = measure_indices(n_train, n_measure, seed)
    assert index.dtype == np.int64 and len(np.unique(index)) == n_measure
    assert np.all(np.diff(index) > 0) and index.min() >= 0 and index.max() < n_train
    np.testing.assert_array_equal(index, np.sort(np.random.default_rng(seed).choice(n_train, n_measure, replace=False)))


def test_n_measure_bounds():
    with pytest.raises(ValueError, match=r"n_measure must be an integer in \[1, n_train = 10\].*got 11"):
        measure_indices(10, 11, 0)
    with pytest.raises(ValueError, match=r"n_measure"):
        measure_indices(10, 0, 0)
    np.testing.assert_array_equal(measure_indices(7, None, 0), np.arange(7))


def test_digits_against_scikit_learn():
    from sklearn.datasets import load_digits

    bunch = load_digits()
    data = load_dataset("digits", n_train=300, n_measure=64, seed=3)
    chosen = np.random.default_rng(SUBSET_SEED).permutation(len(bunch.target))[:300]
    assert isinstance(data, Dataset) and data.name == "digits"
    assert data.x_train.shape == (300, 1, 8, 8) and data.input_shape == (1, 8, 8) and data.num_classes == 10
    np.testing.assert_array_equal(data.labels_train, bunch.target[chosen])
    images = bunch.images[chosen].reshape(300, -1)
    expected = (images - images.mean(1, keepdims=True)) / images.std(1, keepdims=True)
    np.testing.assert_allclose(data.x_train.reshape(300, -1), expected, atol=1e-5)
    assert data.x_test is None and data.y_test is None
    np.testing.assert_array_equal(data.x_measure, data.x_train[data.measure_index])
    np.testing.assert_array_equal(data.y_measure.argmax(1), data.labels_train[data.measure_index])
    assert len(data.x_measure) == 64 and data.source.startswith("sklearn")


def test_seed_moves_only_the_measurement_batch():
    a = load_dataset("digits", n_train=500, n_measure=100, seed=0)
    b = load_dataset("digits", n_train=500, n_measure=100, seed=1)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    assert not np.array_equal(a.measure_index, b.measure_index)
    c = load_dataset("digits", n_train=500, n_measure=100, seed=0, subset_seed=1)
    assert not np.array_equal(a.labels_train, c.labels_train)


def test_load_dataset_rejects_bad_arguments():
    with pytest.raises(ValueError, match=r"n_measure must be an integer in \[1, n_train = 1797\]"):
        load_dataset("digits")  # default n_measure = 4096 > 1797 digits
    assert len(load_dataset("digits", n_measure=None).measure_index) == 1797
    with pytest.raises(ValueError, match=r"name must be one of"):
        load_dataset("imagenet")
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['width'\] for dataset 'digits'"):
        load_dataset("digits", n_measure=10, width=3)
    with pytest.raises(ValueError, match=r"no test split"):
        load_dataset("digits", n_measure=10, n_test=5)
    assert set(DATASET_NAMES) == {"digits", "mnist", "fashion_mnist", "cifar10", "synthetic"}


def _teacher_labels(x, k, m, seed):
    """Independent restatement of the documented teacher: argmax of standardised outputs."""
    rng = np.random.default_rng([seed, 0])
    w1, w2 = rng.standard_normal((m, x.shape[1])), rng.standard_normal((k, m))
    f = lambda z: np.tanh(z @ w1.T / np.sqrt(x.shape[1])) @ w2.T / np.sqrt(m)  # noqa: E731
    ref_in = np.random.default_rng([seed, 3]).standard_normal((4096, x.shape[1]))
    ref = f((ref_in - ref_in.mean(1, keepdims=True)) / ref_in.std(1, keepdims=True))
    return np.argmax((f(x.astype(np.float64)) - ref.mean(0)) / ref.std(0), axis=1)


def test_synthetic_teacher_task():
    data = load_dataset(
        "synthetic",
        n_train=600,
        n_test=100,
        n_measure=50,
        input_dim=7,
        num_outputs=4,
        teacher_width=16,
        teacher_seed=5,
    )
    assert data.x_train.shape == (600, 7) and data.x_test.shape == (100, 7) and data.num_classes == 4
    np.testing.assert_allclose(data.x_train.mean(1), 0, atol=1e-6)
    np.testing.assert_allclose(data.x_train.std(1), 1, atol=1e-5)
    np.testing.assert_array_equal(data.labels_train, _teacher_labels(data.x_train, 4, 16, 5))
    np.testing.assert_array_equal(data.y_test.argmax(1), _teacher_labels(data.x_test, 4, 16, 5))
    counts = np.bincount(data.labels_train, minlength=4)
    assert counts.min() > 600 / 4 / 3  # the standardised teacher gives roughly balanced classes
    prefix = load_dataset(
        "synthetic", n_train=100, n_measure=50, input_dim=7, num_outputs=4, teacher_width=16, teacher_seed=5
    )
    np.testing.assert_array_equal(prefix.x_train, data.x_train[:100])
    assert "teacher_seed=5" in data.source and data.x_test is not None
    assert load_dataset("synthetic", n_measure=10).x_train.shape == (4096, 32)
    with pytest.raises(ValueError, match=r"input_dim must be >= 3"):
        load_dataset("synthetic", n_measure=10, input_dim=2)
    with pytest.raises(ValueError, match=r"num_outputs must be >= 2"):
        load_dataset("synthetic", n_measure=10, num_outputs=1)


def test_dataset_record_checks_its_shapes():
    x, y = np.zeros((4, 3), np.float32), np.eye(2, dtype=np.float32)[[0, 1, 0, 1]]
    record = Dataset("toy", x, y, np.array([0, 2]), None, None, "test")
    assert record.input_shape == (3,) and record.num_classes == 2
    np.testing.assert_array_equal(record.labels_train, [0, 1, 0, 1])
    with pytest.raises(ValueError, match=r"y_train must have shape \(4, k\)"):
        Dataset("toy", x, y[:3], np.array([0]), None, None, "test")
    with pytest.raises(ValueError, match=r"measure_index must hold distinct indices in \[0, 4\)"):
        Dataset("toy", x, y, np.array([1, 1]), None, None, "test")
    with pytest.raises(ValueError, match=r"measure_index"):
        Dataset("toy", x, y, np.array([4]), None, None, "test")
    with pytest.raises(ValueError, match=r"both be given or both be None"):
        Dataset("toy", x, y, np.array([0]), x, None, "test")
