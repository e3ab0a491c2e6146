"""Run storage operations in separate processes: killed mid-way (SIGKILL, no cleanup handlers),
or several at once on the same artifact.

One fresh interpreter imports the package once, then forks one child per task; the tasks of
a group run at the same time. The interpreter is fresh so that no thread pool exists at fork.

    results = run_groups([[task("publish_slow", directory=..., tag="a"), task(...)]])
    results[0][0] == {"signal": None, "exit": 0}
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def task(name: str, **args) -> dict:
    return {"name": name, "args": {k: str(v) if isinstance(v, Path) else v for k, v in args.items()}}


def run_groups(groups: list[list[dict]], timeout: float = 180, pythonpath: Path = REPO) -> list[list[dict]]:
    env = {**os.environ, "PYTHONPATH": str(pythonpath), "OMP_NUM_THREADS": "1", "MFG_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", "from mfg_pipeline_tests.process_kit import _main; _main()"],
                          input=json.dumps(groups), capture_output=True, text=True, timeout=timeout, env=env,
                          cwd=pythonpath)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _main() -> None:
    groups = json.load(sys.stdin)
    # Import once, before forking (no thread pool has started yet): children start instantly.
    import mfg_pipeline.landing.ingest  # noqa: F401
    import mfg_pipeline.storage.artifacts  # noqa: F401
    import mfg_pipeline_tests.landing_kit  # noqa: F401
    results = []
    for group in groups:
        pids = []
        for item in group:
            pid = os.fork()
            if pid == 0:
                code = 0
                try:
                    TASKS[item["name"]](**item["args"])
                except BaseException:
                    traceback.print_exc()
                    code = 3
                sys.stderr.flush()
                os._exit(code)
            pids.append(pid)
        statuses = []
        for pid in pids:
            _, status = os.waitpid(pid, 0)
            statuses.append({"signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
                             "exit": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None})
        results.append(statuses)
    print(json.dumps(results))


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _write_half_and_die(path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data[: len(data) // 2])
        fh.flush()
        os.fsync(fh.fileno())
    _die()


# --------------------------------------------------------------------------- killed writers
def atomic_killed(target: str, kind: str, when: str = "writing") -> None:
    """Write a new value of ``target`` with atomic.write_<kind>, killed while writing the
    temporary file (half of it written) or just before the rename ("renaming")."""
    import pandas as pd
    import torch

    from mfg_pipeline.storage import atomic

    new = {"bytes": b"NEW" * 1000, "json": {"value": "new" * 100}, "parquet": pd.DataFrame({"value": ["new"] * 500}),
           "tensors": {"t": torch.full((500,), 7.0)}}[kind]
    if when == "renaming":
        atomic.os.replace = lambda *a, **k: _die()
    elif kind == "bytes":
        Path.write_bytes = lambda self, data: _write_half_and_die(self, data)
    elif kind == "json":
        Path.write_text = lambda self, text, encoding=None: _write_half_and_die(self, text.encode())
    elif kind == "parquet":
        import pyarrow as pa

        real = atomic.pq.write_table

        def fake_parquet(table, path):
            sink = pa.BufferOutputStream()
            real(table, sink)
            _write_half_and_die(path, sink.getvalue().to_pybytes())
        atomic.pq.write_table = fake_parquet
    else:
        from safetensors.torch import save

        atomic.save_file = lambda tensors, path, metadata=None: _write_half_and_die(path, save(tensors, metadata))
    getattr(atomic, f"write_{kind}")(Path(target), new)
    raise AssertionError("not killed")


def publish_killed(directory: str, when: str) -> None:
    """Publish a new version of a two-file artifact, killed while writing its files ("writing"),
    after its folder is renamed into place but before the pointer switches ("pointer")."""
    from mfg_pipeline.storage import atomic, versioned

    def write(folder: Path) -> dict:
        (folder / "a.txt").write_text("new a")
        if when == "writing":
            with open(folder / "b.txt", "w") as fh:
                fh.write("new b, half writ")
                fh.flush()
            _die()
        (folder / "b.txt").write_text("new b")
        return {"tag": "new"}

    if when == "pointer":
        versioned.atomic.write_json = lambda *a, **k: _die()
    assert atomic  # imported for the patch above
    versioned.publish(Path(directory), write)
    raise AssertionError("not killed")


# --------------------------------------------------------------------------- concurrent writers
def publish_slow(directory: str, tag: str, log: str, version: str = "", delay: float = 0.3) -> None:
    """Publish a three-file artifact written slowly, logging when the write started and ended."""
    from mfg_pipeline.storage import versioned

    def write(folder: Path) -> dict:
        start = time.time()
        for name in ("a.txt", "b.txt", "c.txt"):
            (folder / name).write_text(tag)
            time.sleep(delay / 3)
        with open(log, "a") as fh:
            fh.write(json.dumps({"tag": tag, "start": start, "end": time.time()}) + "\n")
        return {"tag": tag}

    versioned.publish(Path(directory), write, version or None)


def run_day(root: str, source: str, day: str) -> None:
    """Ingest then clean one day of one source (see landing_kit.Drop.run)."""
    from mfg_pipeline_tests.landing_kit import Drop

    Drop(Path(root)).run(source, day)


def republish_same_version(directory: str, rounds: int, stop: str) -> None:
    """Publish one fixed version again and again (what two racing materializations do)."""
    from mfg_pipeline.storage import versioned

    def write(folder: Path) -> dict:
        (folder / "data.txt").write_text("same content")
        return {"tag": "same"}

    for _ in range(rounds):
        versioned.publish(Path(directory), write, "fixed")
    Path(stop).touch()


def read_while_published(directory: str, stop: str, out: str) -> None:
    """Read the current version until ``stop`` exists; record every failed read."""
    from mfg_pipeline.storage import versioned

    reads, errors = 0, []
    deadline = time.time() + 60
    while not Path(stop).exists() and time.time() < deadline:
        try:
            assert (versioned.current(Path(directory)) / "data.txt").read_text() == "same content"
            reads += 1
        except (OSError, AssertionError) as error:
            errors.append(repr(error)[:200])
    Path(out).write_text(json.dumps({"reads": reads, "errors": errors}))


TASKS = {f.__name__: f for f in (atomic_killed, publish_killed, publish_slow, run_day, republish_same_version,
                                  read_while_published)}
