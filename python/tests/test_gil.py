"""Long work releases the GIL and stops on Ctrl-C."""
import os
import signal
import threading
import time

import pytest

import privaudit
from conftest import synthetic, tiny_mlp


def test_a_python_thread_keeps_running_during_an_attack():
    images, labels = synthetic(1)
    ticks = [0]
    stop = threading.Event()
    started = threading.Event()

    def count():
        started.set()
        while not stop.is_set():
            ticks[0] += 1
            stop.wait(0.001)

    thread = threading.Thread(target=count)
    thread.start()
    started.wait()
    before = ticks[0]
    privaudit.attack_gradients(tiny_mlp(), images, labels, attack="dlg", iterations=300,
                               audit=False, progress=False)
    during = ticks[0] - before
    stop.set()
    thread.join()
    # Holding the GIL through the call would let the thread tick at most once.
    assert during >= 5


def test_ctrl_c_stops_an_attack_with_keyboard_interrupt():
    images, labels = synthetic(1)
    timer = threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    try:
        # Without the interrupt this would run until its 60 s budget and return normally.
        with pytest.raises(KeyboardInterrupt):
            privaudit.attack_gradients(tiny_mlp(), images, labels, attack="ig",
                                       iterations=10_000_000, audit=False, progress=False,
                                       time_budget=60)
    finally:
        timer.cancel()
    # The module is usable afterwards.
    result = privaudit.attack_gradients(tiny_mlp(), images, labels, attack="linear-layer",
                                        audit=False, progress=False)
    assert result.psnr[0] > 30


def _processes_naming(text):
    """Processes whose command line contains ``text``."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if text in f.read().decode("utf-8", "replace"):
                    found.append(int(pid))
        except OSError:
            pass  # gone meanwhile
    return found


def test_ctrl_c_stops_the_audit_and_its_stages(cli, tmp_path):
    out = str(tmp_path / "audit")
    # Ctrl-C once a stage process runs (not after a fixed delay: a smoke audit of this MLP can
    # end within 4 s on a fast machine, and then there is nothing to interrupt). The quick
    # profile's gradients stages take far longer than the poll.
    stop = threading.Event()

    def interrupt_once_a_stage_runs():
        deadline = time.monotonic() + 60
        while not stop.is_set() and time.monotonic() < deadline:
            if _processes_naming(out + "/"):
                time.sleep(0.5)
                os.kill(os.getpid(), signal.SIGINT)
                return
            time.sleep(0.05)

    watcher = threading.Thread(target=interrupt_once_a_stage_runs, daemon=True)
    watcher.start()
    started = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            privaudit.audit(tiny_mlp(), train=synthetic(300), test=synthetic(64, seed=1),
                            surfaces=("gradients",), profile="quick", out=out, progress=False)
    finally:
        stop.set()
        watcher.join()
    assert time.monotonic() - started < 40
    time.sleep(0.5)
    # The audit and every stage it started are gone; the folder can be continued.
    assert _processes_naming(out) == []
    assert os.path.exists(os.path.join(out, "privaudit.json"))
