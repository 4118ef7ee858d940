"""The PESQ worker process (``python -m codecfake_build._pesq_worker``; see
``quality.IsolatedPesq``).

The ITU C code kills its process on some long inputs, so it runs here, in a
child that the builder can lose.  A plain subprocess rather than
multiprocessing: spawn re-imports the caller's main script (a build started
from an unguarded script or stdin would break) and fork copies torch's threads.

Protocol on stdin/stdout (binary, little-endian): the worker writes
``ready\\n`` once ``pesq`` is imported; then per request it reads two uint64
(sample count n, sample rate) and two float64 arrays of n samples (reference,
degraded), and answers one JSON line ``["ok", score]`` or ``["failed",
reason]``.  End of input ends the worker (also when the parent dies).
"""

from __future__ import annotations

import importlib
import json
import signal
import sys
from typing import BinaryIO

import numpy as np

READY = b"ready\n"
HEADER_BYTES = 16


def pesq_wb_in_worker(reference: np.ndarray, degraded: np.ndarray, rate: int) -> tuple[str, float | str]:
    """("ok", MOS-LQO) or ("failed", one-line reason); never raises."""
    from pesq import PesqError, pesq

    try:
        return "ok", float(pesq(rate, reference, degraded, "wb"))
    except PesqError as err:  # its messages are bytes from the C code
        msg = err.args[0].decode() if err.args and isinstance(err.args[0], bytes) else str(err)
        return "failed", f"PESQ: {msg}"
    except Exception as err:  # e.g. ValueError from a NaN level inside the wrapper
        return "failed", f"PESQ: {type(err).__name__}: {' '.join(str(err).split())}"


def encode_request(reference: np.ndarray, degraded: np.ndarray, rate: int) -> bytes:
    ref = np.ascontiguousarray(reference, dtype="<f8")
    deg = np.ascontiguousarray(degraded, dtype="<f8")
    return len(ref).to_bytes(8, "little") + int(rate).to_bytes(8, "little") + ref.tobytes() + deg.tobytes()


def _read_exact(stream: BinaryIO, n: int) -> bytes | None:
    chunks, left = [], n
    while left:
        chunk = stream.read(left)
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def serve(stdin: BinaryIO, stdout: BinaryIO) -> None:
    importlib.import_module("pesq")  # fail before "ready" if the package is missing

    stdout.write(READY)
    stdout.flush()
    while True:
        header = _read_exact(stdin, HEADER_BYTES)
        if header is None:
            return
        n, rate = int.from_bytes(header[:8], "little"), int.from_bytes(header[8:], "little")
        body = _read_exact(stdin, 16 * n)
        if body is None:
            return
        ref = np.frombuffer(body[: 8 * n], dtype="<f8")
        deg = np.frombuffer(body[8 * n:], dtype="<f8")
        stdout.write((json.dumps(pesq_wb_in_worker(ref, deg, rate)) + "\n").encode())
        stdout.flush()


if __name__ == "__main__":
    # Ctrl-C reaches the whole process group; this worker ends at end of input when its
    # parent stops, so it never dies first and reports a Ctrl-C as a crash of the C code.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    serve(sys.stdin.buffer, sys.stdout.buffer)
