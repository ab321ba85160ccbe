"""native_work: what the ``ailb`` command's exit asks before it finalizes the interpreter."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
from ailb.embeddings import native_work

with native_work.native_call():
    print("inside", native_work.under_way(), native_work.close())
print("after", native_work.under_way(), native_work.close())
try:
    with native_work.native_call():
        print("entered after close")
except native_work.ProcessExiting as exc:
    print("refused:", exc)
"""


def test_close_reports_a_call_under_way_and_refuses_every_later_one() -> None:
    # In a process of its own: close() is for good, as in the process that exits.
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.splitlines() == ["inside True True", "after False False", "refused: the process is exiting"]
