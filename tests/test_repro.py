"""`cgen repro`: dvc repro's output passes through, with the run's progress before each stage."""

from __future__ import annotations

import sys

import pytest

from stages import repro
from stages.cli import main

FAKE_DVC = """
import sys
stages = ["prepare", "judge", "stic_round@r1"]
if "--dry" in sys.argv:
    print("\\n".join(f"Running stage '{s}':\\n> bin/cgen x" for s in stages))
else:
    for s in stages[:2]:
        print(f"Running stage '{s}':")
        print("INFO work")
    sys.exit(3)
"""


def test_each_stage_gets_its_place_in_the_run_and_dvc_s_exit_code(tmp_path, monkeypatch, capfd):
    fake = tmp_path / "fake_dvc.py"
    fake.write_text(FAKE_DVC)
    monkeypatch.setattr(repro, "dvc_command", lambda: [sys.executable, str(fake)])
    assert main(["repro", "--force"]) == 3  # DVC's exit code
    out = capfd.readouterr().out.splitlines()
    assert out[0] == "dvc repro: 3 stage(s) to run"
    assert out[1] == "[1/3, 0:00 elapsed] prepare" and out[2] == "Running stage 'prepare':"
    assert out[4].startswith("[2/3, ") and out[4].endswith("judge") and out[6] == "INFO work"
    assert out[-1].startswith("dvc repro finished in ") and "(2 stage(s) ran)" in out[-1]
    # without --force, --dry lists the stages whose own inputs changed: more may follow them
    assert main(["repro"]) == 3
    out = capfd.readouterr().out.splitlines()
    assert out[0] == "dvc repro: >=3 stage(s) to run" and out[1].startswith("[1/>=3, ")


@pytest.mark.parametrize(("k", "n", "s", "line"), [
    (3, "74", 754.9, "[3/74, 12:34 elapsed] x"), (1, "?", 3725, "[1/?, 1:02:05 elapsed] x"),
])  # fmt: skip
def test_progress_line(k, n, s, line):
    assert repro.progress_line(k, n, "x", s) == line
