"""What only the DuckDB adapter does: one process owns the data directory.

The Store contract itself (durable, idempotent writes; groups, streams, retention; errors) is
tested on every engine in ``test_store.py``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from dashcam.store.duckdb import DuckDBStore


def test_a_second_process_gets_a_clear_busy_error(tmp_path):
    with DuckDBStore(tmp_path):
        code = (
            "import sys; sys.path.insert(0, %r)\n"
            "from dashcam.store.duckdb import DuckDBStore\n"
            "from dashcam.errors import StoreBusyError\n"
            "try:\n    DuckDBStore(%r)\nexcept StoreBusyError as e:\n    print('busy:', e)\n"
        ) % (str(Path(__file__).resolve().parents[2] / "src"), str(tmp_path))
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
        assert out.startswith("busy:") and "another dashcam process" in out
