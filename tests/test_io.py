"""Atomic outputs: a killed writer leaves the old file or the new one, and its hidden temporary
file is removed when the stage runs again; a completed rename is synced to disk."""

from __future__ import annotations

import signal
import subprocess
import sys

from pipeline import io
from stages.cli import remove_stale_outputs

WRITER = """
import sys, time
from pathlib import Path
from pipeline.io import atomic_path
with atomic_path(Path(sys.argv[1])) as tmp:
    tmp.write_bytes(b"half")
    print("writing", flush=True)
    time.sleep(60)
"""


def test_a_sigkilled_writer_leaves_the_old_file_and_a_temp_the_next_run_removes(tmp_path):
    out = tmp_path / "models" / "r1.pt"
    io.atomic_write_text(out, "old")
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(out)], stdout=subprocess.PIPE,
                            text=True)  # fmt: skip
    assert proc.stdout.readline().strip() == "writing"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    left = [p for p in out.parent.iterdir() if p.name != "r1.pt"]
    assert out.read_text() == "old" and len(left) == 1 and left[0].name.startswith(".r1.pt.")
    other = out.parent / ".r1.pt.extra.abcd1234.tmp"  # another file's temp: not this output's
    other.write_text("keep")
    remove_stale_outputs(["--model-out", str(out), "--round", "r1"])  # as the dispatcher does
    assert sorted(p.name for p in out.parent.iterdir()) == [other.name, "r1.pt"]


def test_remove_stale_temps_matches_only_the_names_atomic_path_makes(tmp_path):
    out = tmp_path / "a[1].json"  # glob characters in the name are taken literally
    names = [".a[1].json.k2_x9q0z.tmp", ".a[1].json.short.tmp", "a[1].json", ".b.json.k2_x9q0z.tmp"]
    for name in names:
        (tmp_path / name).write_text("x")
    assert [p.name for p in io.remove_stale_temps(out)] == [names[0]]
    assert io.remove_stale_temps(tmp_path / "missing" / "x.pt") == []


def test_the_folder_is_synced_after_the_rename(tmp_path, monkeypatch):
    seen = []
    out = tmp_path / "x.json"
    monkeypatch.setattr(io, "_fsync_dir", lambda folder: seen.append((folder, out.exists())))
    io.atomic_write_json(out, {"a": 1})
    assert seen == [(tmp_path, True)]
