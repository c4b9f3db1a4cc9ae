"""Shared test settings: hypothesis runs the same examples every time (deterministic CI)."""

from hypothesis import settings

settings.register_profile("course", derandomize=True, deadline=None, print_blob=True)
settings.load_profile("course")


def pytest_sessionfinish(session, exitstatus):
    """Remove what checks kept in kernels the run stopped: a killed kernel cannot remove its own."""
    from streamlab.exercises import lesson03, lesson09
    from streamlab.exercises.differ import remove_left_behind

    for prefix in (lesson03._KEPT_PREFIX, lesson09._KEPT_PREFIX):
        remove_left_behind(prefix)
