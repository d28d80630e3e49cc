"""What the peer benchmark drivers share: the peers' environment, timing a process, the RESULTS.md section.

Imported by benchmarks/peer_*.py (which run in lstmtext's environment), not by the workers.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


def peer_env(threads: int) -> dict:
    """The environment for a peer process: torch's default threads (0) or ``threads``."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS",
                                                             "OPENBLAS_NUM_THREADS")}
    # OpenNMT-py 3.0.4 checkpoints hold an argparse.Namespace, which torch >= 2.6 refuses to load by
    # default; the peers load only files these benchmarks wrote.
    env["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = "1"
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    return env


def timed(cmd: list[str], env: dict | None = None) -> float:
    """Wall seconds of one process from launch to exit (exits with its stderr when it fails)."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=ROOT)
    if proc.returncode:
        sys.exit(f"{' '.join(cmd[:3])}...: {proc.stderr.decode(errors='replace')[-2000:]}")
    return time.perf_counter() - t0


def report(title: str, script: str, lines: list[str], table: list[str], append: bool) -> None:
    """Print the lines and the table; with ``append``, add them as a dated section (with the command) to RESULTS.md."""
    print("\n".join(lines + [""] + table))
    if not append:
        return
    cmd = f"python benchmarks/{script} " + " ".join(a for a in sys.argv[1:] if a != "--append")
    section = (f"\n## {title} ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, issue 15)\n\n`{cmd.strip()}`\n\n"
               + "\n".join(f"- {x}" for x in lines) + "\n\n" + "\n".join(table) + "\n")
    with open(ROOT / "benchmarks" / "RESULTS.md", "a", encoding="utf-8") as fh:
        fh.write(section)
