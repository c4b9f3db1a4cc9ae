"""The live view: paced by the simulated clock, deterministic frames, stops cleanly, leaves nothing running."""

import threading
import time
from datetime import timedelta

import matplotlib.pyplot as plt
import pytest
from test_panes import TRACE_A

from streamlab import COURSE_START, arrived_before, batch, pipe, stream
from streamlab.events import COURSE_START as T
from streamlab.panes import Delay
from streamlab.plots import live
from streamlab.windows import Tumbling


def lesson_01_view(minutes: int = 4) -> live.LiveView:
    sales = pipe(seed=1, rate=1.0, keys=3)
    end = COURSE_START + timedelta(minutes=minutes)
    pile = arrived_before(sales, end)
    return live.answer_converging(pile, stream.summarize(sales, until=end, batch_size=1), batch.summarize(pile),
                                  until=end, step=timedelta(minutes=1))


def lesson_04_view() -> live.LiveView:
    result = stream.panes(TRACE_A, Tumbling(10, align_to=T), watermark=Delay(5))
    return live.windows_closing(TRACE_A, result, step=timedelta(seconds=2))


class FakeClock:
    """Stands in for the wall clock that paces frames: sleeping advances it, nothing else does."""

    def __init__(self):
        self.now, self.slept = 100.0, []

    def monotonic(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(live.time, "monotonic", fake.monotonic)
    monkeypatch.setattr(live.time, "sleep", fake.sleep)
    return fake


@pytest.mark.parametrize("make", [lesson_01_view, lesson_04_view])
def test_frames_are_the_same_on_every_run_and_differ_from_moment_to_moment(make):
    first, second = make(), make()
    try:
        assert first.moments == second.moments
        assert first.frame(first.moments[-1]) == second.frame(second.moments[-1])  # the committed still
        assert first.frame(first.moments[1]) == second.frame(second.moments[1])
        assert first.frame(first.moments[1]) != first.frame(first.moments[-1])
    finally:
        first.close()
        second.close()


def test_play_is_paced_by_simulated_time_at_the_speed_asked(clock, capsys):
    view = lesson_01_view(minutes=4)  # 4 simulated minutes, a frame a minute
    threads = threading.active_count()
    view.play(speed=60)
    assert view.shown == len(view.moments) == 5
    # Frame k is due k simulated minutes in, that is k real seconds at 60x: it never runs ahead of that.
    assert clock.now - 100.0 >= 4.0
    assert sum(clock.slept) == pytest.approx(4.0)
    assert threading.active_count() == threads  # no thread or timer left behind
    assert view.figure.number not in plt.get_fignums()
    assert "<live view: the answer converging: 5 frames, 240 simulated seconds>" in capsys.readouterr().out


def test_an_interrupt_stops_playing_where_it_was_and_closes_the_figure(clock, monkeypatch):
    view = lesson_04_view()
    calls = []

    def sleep(seconds):
        calls.append(seconds)
        if len(calls) == 3:
            raise KeyboardInterrupt
    monkeypatch.setattr(live.time, "sleep", sleep)
    view.play(speed=10)  # no exception: the cell ends quietly
    assert view.shown == 2
    assert view.figure.number not in plt.get_fignums()


@pytest.mark.parametrize("speed", [0, -1, float("nan")])
def test_a_speed_that_is_not_positive_is_refused(speed):
    view = lesson_04_view()
    with pytest.raises(ValueError, match="speed must be a positive number"):
        view.play(speed=speed)
    view.close()


def test_the_batch_answer_appears_only_when_the_pile_closes():
    view = lesson_01_view(minutes=4)
    right = view.figure.axes[1]
    dotted = [line for line in right.get_lines() if line.get_marker() == "D" and len(line.get_xdata())]
    view.draw(view.moments[-2])
    assert dotted and not any(line.get_visible() for line in dotted)
    view.draw(view.moments[-1])
    assert all(line.get_visible() for line in dotted)
    view.close()


def test_a_kernel_interrupt_stops_a_playing_view_and_leaves_nothing_running():
    # A real kernel, as in JupyterLab: the ■ button sends it SIGINT while the view plays.
    from jupyter_client.manager import start_new_kernel

    manager, client = start_new_kernel(kernel_name="python3")
    try:
        def run(code: str, timeout: float = 60) -> dict:
            reply = client.execute_interactive(code, timeout=timeout, output_hook=lambda msg: None)
            return reply["content"]

        assert run("import threading, matplotlib.pyplot as plt\n"
                    "from datetime import timedelta\n"
                    "from streamlab import stream\n"
                    "from streamlab.events import COURSE_START as T, Event\n"
                    "from streamlab.panes import Delay\n"
                    "from streamlab.plots import live\n"
                    "from streamlab.windows import Tumbling\n"
                    "trace = [Event('a', 1.0, T + timedelta(seconds=s), T + timedelta(seconds=s + 1)) for s in range(40)]\n"
                    "view = live.windows_closing(trace, stream.panes(trace, Tumbling(10, align_to=T), watermark=Delay(5)))\n"
                    # A first view played to its end: pyzmq starts its own thread (for zero-copy sends of
                    # the frames) once per process; what a stopped view may not leave is anything more.
                    "live.windows_closing(trace[:3], stream.panes(trace[:3], Tumbling(10, align_to=T))).play(1e6)\n"
                    "before = threading.enumerate()")["status"] == "ok"
        msg_id = client.execute("view.play(speed=1)")  # 40 simulated seconds: 40 real seconds unless stopped
        while True:  # the view is on the page: playing has begun
            msg = client.get_iopub_msg(timeout=60)
            if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "display_data":
                break
        time.sleep(2)
        manager.interrupt_kernel()
        reply = client.get_shell_msg(timeout=30)
        assert reply["parent_header"]["msg_id"] == msg_id
        assert reply["content"]["status"] == "ok"  # stopped quietly, no traceback
        check = run("assert 0 < view.shown < len(view.moments), view.shown\n"
                    "assert threading.enumerate() == before, threading.enumerate()\n"
                    "assert view.figure.number not in plt.get_fignums(), (view.figure.number, plt.get_fignums())")
        assert check["status"] == "ok", check
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
