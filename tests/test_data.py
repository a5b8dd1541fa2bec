"""fnopt.epochs: n passes over a re-iterable loader, with the epoch and batch position."""

from __future__ import annotations

import numpy as np
import pytest

import fnopt


def test_epochs_yields_every_pass_and_tracks_position():
    loader = [(i,) for i in range(3)]
    data = fnopt.epochs(loader, 3)
    assert isinstance(data, fnopt.Epochs)
    assert len(data) == 9 and data.steps_per_epoch == 3
    seen = []
    for batch in data:
        seen.append((batch[0], data.epoch, data.batch_in_epoch, data.step, data.new_epoch))
        assert not data.done
    assert [s[0] for s in seen] == [0, 1, 2] * 3
    assert [s[1] for s in seen] == [0] * 3 + [1] * 3 + [2] * 3
    assert [s[2] for s in seen] == [0, 1, 2] * 3
    assert [s[3] for s in seen] == list(range(1, 10))
    assert [s[4] for s in seen] == [True, False, False] * 3
    assert data.done and data.epoch == 3 and data.batches_seen == [3, 3, 3]
    assert loader == [(i,) for i in range(3)]  # only read


def test_epochs_reiterates_from_the_start_and_resumes_from_start():
    data = fnopt.epochs([1, 2], 2)
    assert list(data) == [1, 2, 1, 2]
    assert list(data) == [1, 2, 1, 2] and data.step == 4
    resumed = fnopt.epochs([1, 2], 3, start=2)
    assert resumed.epoch == 2 and len(resumed) == 2
    assert [(b, resumed.epoch) for b in resumed] == [(1, 2), (2, 2)]
    assert list(fnopt.epochs([1], 2, start=2)) == []


def test_epochs_calls_iter_once_per_pass_so_a_shuffling_loader_reshuffles():
    class Shuffled:
        def __init__(self):
            self.rng, self.calls = np.random.default_rng(0), 0

        def __iter__(self):
            self.calls += 1
            return iter(self.rng.permutation(20).tolist())

    loader = Shuffled()
    out = list(fnopt.epochs(loader, 2))
    assert loader.calls == 2
    assert sorted(out[:20]) == sorted(out[20:]) == list(range(20)) and out[:20] != out[20:]


def test_epochs_without_len_counts_batches_seen():
    class NoLen:
        def __iter__(self):
            return iter("abc")

    data = fnopt.epochs(NoLen(), 2)
    assert data.steps_per_epoch is None
    with pytest.raises(TypeError, match="no length"):
        len(data)
    assert "".join(data) == "abcabc" and data.batches_seen == [3, 3]


def test_epochs_with_torch_dataloader():
    torch = pytest.importorskip("torch")
    ds = torch.utils.data.TensorDataset(torch.arange(10.0), torch.arange(10))
    loader = torch.utils.data.DataLoader(ds, batch_size=4)
    data = fnopt.epochs(loader, 2)
    assert len(data) == 6
    sizes = [(len(x), data.epoch, data.batch_in_epoch) for x, _ in data]
    assert sizes == [(4, 0, 0), (4, 0, 1), (2, 0, 2), (4, 1, 0), (4, 1, 1), (2, 1, 2)]


def test_epochs_as_fixed_point_data_today():
    # today's loop takes one batch per step from any iterable; the attributes stay readable
    xs = [(np.array([float(i)]),) for i in range(4)]
    data = fnopt.epochs(xs, 3)
    epochs_seen = []

    def grad_fn(p, x):
        return 0.5 * float(((p - x) ** 2).sum()), p - x

    r = fnopt.fixed_point(fnopt.sgd(0.1), np.zeros(1), grad_fn, data=data,
                          stop=fnopt.stop.max_iters(100),
                          callback=lambda info: epochs_seen.append(data.epoch))
    assert r.reason == "data_exhausted" and data.done
    assert epochs_seen == [0] * 4 + [1] * 4 + [2] * 4


def test_epochs_rejects_bad_input():
    with pytest.raises(TypeError, match="one-shot"):
        fnopt.epochs(iter([1, 2]), 2)
    with pytest.raises(TypeError, match="one-shot"):
        fnopt.epochs((x for x in [1]), 3, start=1)
    assert list(fnopt.epochs(iter([1, 2]), 1)) == [1, 2]
    assert list(fnopt.epochs(iter([1, 2]), 2, start=1)) == [1, 2]
    with pytest.raises(TypeError, match="loader"):
        fnopt.epochs(3, 2)
    with pytest.raises(ValueError, match="n:"):
        fnopt.epochs([1], 0)
    with pytest.raises(TypeError, match="n:"):
        fnopt.epochs([1], 2.0)
    with pytest.raises(ValueError, match="start"):
        fnopt.epochs([1], 2, start=3)
    with pytest.raises(ValueError, match="no batches in epoch 0"):
        list(fnopt.epochs([], 2))


def test_epochs_catches_a_loader_whose_iter_returns_itself():
    class SelfIter:  # an iterable that is secretly one-shot (not an Iterator subclass)
        def __init__(self):
            self.items = [1, 2]

        def __iter__(self):
            return self

        def __next__(self):
            if not self.items:
                raise StopIteration
            return self.items.pop(0)

    assert isinstance(SelfIter(), __import__("collections.abc").abc.Iterator)
    with pytest.raises(TypeError, match="one-shot"):
        fnopt.epochs(SelfIter(), 2)
    data = fnopt.Epochs(SelfIter(), 2)  # built directly, without the check
    with pytest.raises(TypeError, match="one-shot"):
        list(data)
