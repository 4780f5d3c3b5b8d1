"""Padding with attention masks and pooling."""

from __future__ import annotations

import numpy as np
import pytest

from local_runtime.text import l2_normalize, length_groups, mean_pool, pad_batch, pool


def test_pad_batch_right_pads_to_the_longest_with_a_mask() -> None:
    ids, mask = pad_batch([[101, 7, 102], [101, 102], [101, 5, 6, 7, 102]], pad_id=0)
    assert ids.dtype == np.int64 and mask.dtype == np.int64
    assert ids.tolist() == [[101, 7, 102, 0, 0], [101, 102, 0, 0, 0], [101, 5, 6, 7, 102]]
    assert mask.tolist() == [[1, 1, 1, 0, 0], [1, 1, 0, 0, 0], [1, 1, 1, 1, 1]]
    ids, _ = pad_batch([[1], [1, 2]], pad_id=9)
    assert ids.tolist() == [[1, 9], [1, 2]]


def test_pad_batch_rejects_nothing_to_pad() -> None:
    with pytest.raises(ValueError):
        pad_batch([])
    with pytest.raises(ValueError):
        pad_batch([[], []])


def test_mean_pool_ignores_padded_positions() -> None:
    hidden = np.array([[[1, 2], [3, 4], [100, 100]], [[5, 5], [0, 0], [0, 0]]], dtype=np.float32)
    mask = np.array([[1, 1, 0], [1, 0, 0]])
    assert mean_pool(hidden, mask).tolist() == [[2.0, 3.0], [5.0, 5.0]]


def test_l2_normalize_gives_unit_vectors_and_survives_zero() -> None:
    vectors = l2_normalize(np.array([[3, 4], [0, 0]], dtype=np.float32))
    assert vectors.tolist() == [[0.6000000238418579, 0.800000011920929], [0.0, 0.0]]


def test_pool_modes() -> None:
    hidden = np.array([[[3, 0], [0, 4]]], dtype=np.float32)
    mask = np.array([[1, 1]])
    assert pool(hidden, mask, "cls", normalize=False).tolist() == [[3.0, 0.0]]
    assert pool(hidden, mask, "mean", normalize=False).tolist() == [[1.5, 2.0]]
    assert pool(hidden, mask, "mean", normalize=True)[0].tolist() == pytest.approx([0.6, 0.8])
    flat = pool(np.array([[3, 4]], dtype=np.float32), mask, "none", normalize=True)
    assert flat[0].tolist() == pytest.approx([0.6, 0.8])
    with pytest.raises(ValueError, match="pooling 'none' needs a"):
        pool(hidden, mask, "none", normalize=True)
    with pytest.raises(ValueError, match="pooling 'mean' needs a"):
        pool(np.zeros((1, 2), dtype=np.float32), mask, "mean", normalize=True)


def test_length_groups_split_only_when_padding_would_waste_a_lot() -> None:
    assert length_groups([12, 10, 14, 11], min_tokens=0) == [[1, 3, 0, 2]]  # similar: one run, shortest first
    lengths = [200, 8, 9, 190, 10, 8]
    groups = length_groups(lengths, min_tokens=16)
    assert groups == [[1, 5, 2, 4], [3, 0]]
    assert sorted(i for g in groups for i in g) == list(range(len(lengths)))
    assert length_groups(lengths, min_tokens=10_000) == [[1, 5, 2, 4, 3, 0]]  # too few tokens to split
    assert length_groups([]) == []


def test_length_groups_tolerate_more_padding_when_a_pad_costs_less_than_a_token() -> None:
    lengths = [9, 18] * 16  # padded to 18: 432 real tokens in 576 positions
    assert len(length_groups(lengths)) == 2
    assert length_groups(lengths, pad_cost=0.25) == [sorted(range(32), key=lengths.__getitem__)]
    lengths = [4] * 40 + [200] * 2  # padding to 200 would cost far more than the real tokens
    assert len(length_groups(lengths, pad_cost=0.25)) == 2
