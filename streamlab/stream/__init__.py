"""The stream driver: bytewax dataflows over an unbounded pipe.

Every computation here has a twin of the same name and signature in
:mod:`streamlab.batch`; :func:`run` runs any dataflow of your own over events.
"""

from streamlab.stream.runner import EventSource, Run, StreamError, run
from streamlab.stream.summary import summarize

__all__ = ["EventSource", "Run", "StreamError", "run", "summarize"]
