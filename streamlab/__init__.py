"""streamlab: one computation, two drivers; pandas over a pile, bytewax over a pipe.

>>> from streamlab import batch, stream, pipe
>>> from streamlab.compare import agree
>>> p = pipe(seed=3)
>>> agree(batch.summarize(p, limit=500), stream.summarize(p, limit=500)).ok
True
"""

from streamlab.events import COURSE_START, Event, Pipe, arrived_before, pipe, take, to_frame

__version__ = "0.1.0"
__all__ = ["COURSE_START", "Event", "Pipe", "arrived_before", "pipe", "take", "to_frame"]
