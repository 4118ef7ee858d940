"""A quality worker process (``python -m codecfake_build._quality_worker``; see
``quality_pool.QualityPool``): computes ``quality.row_quality`` for the requests
the build process sends, one at a time.

Protocol on stdin/stdout (binary): the worker writes ``ready\\n`` once its
imports are done; then each message, both ways, is an 8-byte little-endian
length and that many bytes of pickle.  A request is ``(task, args)``, a task
of ``quality_pool.TASKS`` (``row_quality``; ``source``: a bona fide row's FLAC
and log-mel; ``fake``: a codec row's quality values and FLAC); the answer is ``("ok", RowQuality)`` or ``("error",
exception)`` for a fault that is not about one clip (e.g. the PESQ worker
cannot start), which the build process raises.  Pickle is safe here: both ends
are this package, talking over the pipes of a child it started.  End of input
ends the worker, also when the build process dies (even by ``kill -9``: the
only write end of the pipe is the parent's).

PESQ stays crash-isolated inside each worker: ``quality.pesq_wb`` sends the
ITU C code to the worker's own ``IsolatedPesq`` child, so a crash there costs
one value, never this process.
"""

from __future__ import annotations

import os
import pickle
import signal
import sys
from typing import Any, BinaryIO

READY = b"ready\n"
LENGTH_BYTES = 8


def write_message(stream: BinaryIO, obj: Any) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(len(data).to_bytes(LENGTH_BYTES, "little") + data)
    stream.flush()


def read_message(stream: BinaryIO) -> Any:
    """The next message, or raise EOFError when the other end has gone."""
    header = _read_exact(stream, LENGTH_BYTES)
    body = _read_exact(stream, int.from_bytes(header, "little"))
    return pickle.loads(body)


def _read_exact(stream: BinaryIO, n: int) -> bytes:
    chunks, left = [], n
    while left:
        chunk = stream.read(left)
        if not chunk:
            raise EOFError("the other end of the quality worker's pipe closed")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def serve(stdin: BinaryIO, stdout: BinaryIO) -> None:
    from codecfake_build.quality import mel_filterbank
    from codecfake_build.quality_pool import TASKS

    mel_filterbank()  # librosa's import and the filterbank now, not inside the first request
    stdout.write(READY)
    stdout.flush()
    while True:
        try:
            task, args = read_message(stdin)
        except EOFError:
            return
        try:
            answer: tuple[str, Any] = ("ok", TASKS[task](*args))
        except Exception as err:  # noqa: BLE001 - the build process decides; the worker keeps serving
            answer = ("error", err)
        write_message(stdout, answer)


def main() -> None:
    # Ctrl-C reaches the whole process group; the build process decides what stops (it
    # closes or kills its workers), so a worker never dies half-way through an answer.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A cancelled build stops its workers with SIGTERM: exit through the interpreter, so the
    # atexit hook closes this worker's PESQ child (and reaps it) instead of orphaning it.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(1))
    # The protocol owns the real stdout; anything a library prints goes to stderr instead.
    protocol_out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    serve(sys.stdin.buffer, protocol_out)


if __name__ == "__main__":
    main()
