"""fnopt.callbacks: progress (tqdm and plain), log_every, combine, format_info."""

from __future__ import annotations

import io
import logging

import pytest

import fnopt
from fnopt import callbacks
from fnopt.stop import Info


def run(n: int, callback, lr=1e-3) -> fnopt.Result:
    task = fnopt.tasks.rosenbrock()
    return fnopt.fixed_point(fnopt.sgd(lr), task.init_params, task.grad_fn,
                             stop=fnopt.stop.max_iters(n), callback=callback, record=True)


class TTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_format_info_fields():
    info = Info(7, 0.123456789, 2.5, None, fnopt.sgd(0.01).init(fnopt.tasks.rosenbrock()
                .init_params), None, float("nan"), 0.25)
    assert callbacks.format_info(info) == "iter 7  loss 0.123457  grad_norm 2.5  lr 0.01  0.25s"


@pytest.mark.parametrize("n", [1, 3, 10])
def test_log_every_prints_every_nth_iterate(n):
    out = io.StringIO()
    r = run(20, callbacks.log_every(n, file=out))
    lines = out.getvalue().splitlines()
    iters = [int(line.split()[1]) for line in lines]
    assert iters == list(range(0, 21, n))
    losses = [float(line.split()[3]) for line in lines]
    assert losses == pytest.approx(list(r.history.loss[::n]), rel=1e-5)
    assert all("lr 0.001" in line for line in lines)


def test_log_every_defaults_to_stdout(capsys):
    run(4, callbacks.log_every(2))
    assert len(capsys.readouterr().out.splitlines()) == 3


def test_log_every_to_a_logger(caplog):
    log = logging.getLogger("fnopt.test")
    with caplog.at_level(logging.INFO, logger="fnopt.test"):
        run(4, callbacks.log_every(2, logger=log))
    assert [rec.getMessage().split()[1] for rec in caplog.records] == ["0", "2", "4"]


def test_plain_progress_writes_lines_and_a_final_one():
    out = io.StringIO()
    with callbacks.progress(total=50, file=out, use_tqdm=False, min_interval=0) as bar:
        r = run(50, bar)
    lines = out.getvalue().splitlines()
    assert len(lines) == 51  # every iterate, the last one once
    assert lines[0].startswith("fnopt: 0/50  loss 1  grad_norm 2  lr 0.001")
    assert lines[-1].startswith("fnopt: 50/50  loss ")
    assert f"loss {r.value:.6g}" in lines[-1]


def test_plain_progress_throttles_and_close_shows_the_last_iterate():
    out = io.StringIO()
    bar = callbacks.progress(file=out, use_tqdm=False, min_interval=3600)
    run(30, bar)
    assert len(out.getvalue().splitlines()) == 1  # only the first iterate so far
    bar.close()
    bar.close()  # idempotent
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and lines[-1].startswith("fnopt: 30  ")


def test_plain_progress_rewrites_one_line_on_a_terminal():
    out = TTY()
    with callbacks.progress(file=out, use_tqdm=False, min_interval=0, desc="fit") as bar:
        run(5, bar)
    text = out.getvalue()
    assert text.count("\r") == 6 and text.endswith("\n") and text.count("\n") == 1
    assert "fit: 5  loss" in text


def test_tqdm_progress_bar():
    pytest.importorskip("tqdm")
    out = io.StringIO()
    with callbacks.progress(total=40, file=out, min_interval=0) as bar:
        assert bar.use_tqdm
        run(40, bar)
    text = out.getvalue()
    assert "40/40" in text and "loss=" in text and "lr=0.001" in text


def test_progress_never_stops_the_run_and_ignores_calls_after_close():
    out = io.StringIO()
    bar = callbacks.progress(file=out, use_tqdm=False, min_interval=0)
    assert run(10, bar).reason == "max_iters"
    bar.close()
    before = out.getvalue()
    run(3, bar)
    assert out.getvalue() == before


def test_combine_calls_all_and_stops_when_any_asks():
    seen_a, seen_b = [], []

    def a(info):
        seen_a.append(info.iteration)
        return info.iteration == 4

    def b(info):
        seen_b.append(info.iteration)

    r = run(100, callbacks.combine(a, b))
    assert r.reason == "callback" and r.iterations == 4
    assert seen_a == seen_b == [0, 1, 2, 3, 4]


BAD_ARGS = [
    (lambda: callbacks.log_every(0), ValueError, "n: expected an int >= 1"),
    (lambda: callbacks.log_every(2.0), TypeError, "n: expected an int"),
    (lambda: callbacks.log_every(2, logger="root"), TypeError, "logger"),
    (lambda: callbacks.progress(total=0), ValueError, "total"),
    (lambda: callbacks.progress(min_interval=-1), ValueError, "min_interval"),
    (lambda: callbacks.progress(min_interval=float("nan")), ValueError, "min_interval"),
    (lambda: callbacks.progress(desc=3), TypeError, "desc"),
    (lambda: callbacks.combine(print, 3), TypeError, "argument 1"),
]


@pytest.mark.parametrize("make,exc,pattern", BAD_ARGS)
def test_bad_arguments_name_themselves(make, exc, pattern):
    with pytest.raises(exc, match=pattern):
        make()


def test_without_tqdm_progress_falls_back_to_a_plain_line(monkeypatch):
    monkeypatch.setattr(callbacks, "_have_tqdm", lambda: False)
    out = io.StringIO()
    with callbacks.progress(file=out, min_interval=0) as bar:
        assert not bar.use_tqdm
        run(3, bar)
    assert out.getvalue().splitlines()[-1].startswith("fnopt: 3  loss ")
    with pytest.raises(ImportError, match="use_tqdm: tqdm is not installed"):
        callbacks.progress(use_tqdm=True)
