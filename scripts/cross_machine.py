"""Do two machines compute the same bytes? Run a short chain of the real stage commands (prepare,
both judges, the baseline r0, STIC round r1, its samples and their evaluation) and record the
md5 of every output, then compare two such records.

    .venv/bin/python scripts/cross_machine.py run --out /tmp/xm/here
    .venv/bin/python scripts/cross_machine.py run --out /tmp/xm/haswell --emulate Haswell-noTSX
    .venv/bin/python scripts/cross_machine.py compare /tmp/xm/here /tmp/xm/haswell
    .venv/bin/python scripts/cross_machine.py run --out DIR --emulate CPU --start stic_round@r1

`--emulate CPU` runs every stage under `qemu-x86_64 -cpu CPU` (Debian's qemu-user): the libraries
then see another CPU (e.g. an Intel Haswell: another vendor, other cache sizes), which is what
decides their kernels, on this machine. Emulation is slow (an import of torch takes ~30 s), so the
chain runs params.yaml with the training steps, chains and sample counts cut (`--scale`), the
architectures and every other setting kept. `--numerics native` runs it unpinned.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PYTHON = ROOT / ".venv" / "bin" / "python"


def small_params(numerics: str) -> dict:
    """params.yaml with its sizes cut for an emulated run (the kinds of computation kept)."""
    p = copy.deepcopy(yaml.safe_load((ROOT / "params.yaml").read_text()))
    p["runtime"]["numerics"] = numerics
    p["tracking"]["enabled"] = False
    for section in ("judge", "judge_b", "baseline"):
        p[section]["train"]["steps"] = 40
    p["stic"]["train"]["steps"] = 20
    p["stic"]["chains"].update(size=256, steps=5)
    p["stic"]["eval"].update(hard_per_class=4, soft=10, steps=20, burn_in=5)
    p["stic"]["rounds"] = {"r1": {"prev": "r0"}}
    p["eval"]["metrics"].update(num_samples=40, kid_subset_size=20, kid_subsets=5, bootstrap=20,
                                diversity_pairs=5, neighbours=4)  # fmt: skip
    return p


def commands(d: Path, params: Path) -> list[tuple[str, list[str]]]:
    """(name, cgen arguments) of the chain, as dvc.yaml writes them."""
    tr, te = ["--train", d / "train.pt"], ["--test", d / "test.pt"]
    out = [("prepare", ["prepare", "--train-out", d / "train.pt", "--test-out", d / "test.pt",
                        "--metrics", d / "data.json"])]  # fmt: skip
    for section, name in (("judge", "judge"), ("judge_b", "judge_b"), ("baseline", "r0")):
        out.append((section, ["classifier", "--section", section, *tr, *te, "--model-out",
                              d / f"{name}.pt", "--metrics", d / f"{name}.json", "--figure",
                              d / f"{name}.png", "--history", d / f"{name}.tsv"]))  # fmt: skip
    out += [
        ("stic_round@r1", ["stic-round", "--round", "r1", "--prev", d / "r0.pt", *tr, *te,
                           "--model-out", d / "r1.pt", "--metrics", d / "r1.json",
                           "--figure", d / "r1_train.png", "--history", d / "r1.tsv"]),
        ("stic_sample@r1", ["stic-sample", "--round", "r1", "--model", d / "r1.pt", *tr,
                            "--samples-out", d / "r1_samples.pt", "--metrics",
                            d / "r1_sampling.json", "--figure", d / "r1_samples.png"]),
        ("evaluate@r1", ["evaluate", "--name", "r1", "--samples", d / "r1_samples.pt", *tr, *te,
                         "--judge", d / "judge.pt", "--judge-b", d / "judge_b.pt",
                         "--metrics", d / "r1_eval.json", "--grid", d / "r1_grid.png",
                         "--strips", d / "r1_strips.png", "--neighbours", d / "r1_nn.png"]),
    ]  # fmt: skip
    return [(n, [*map(str, a), "--params", str(params)]) for n, a in out]


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def run(
    out: Path, emulate: str | None, numerics: str, start: str | None, until: str | None
) -> None:
    """Run the chain into `out`; with `start`, the stages before it are taken as done (their
    files already in `out`, e.g. from an interrupted run) and not rerun; with `until`, the chain
    stops after that stage."""
    out.mkdir(parents=True, exist_ok=True)
    params = out / "params.yaml"
    params.write_text(yaml.safe_dump(small_params(numerics), sort_keys=False))
    prefix = ["qemu-x86_64", "-cpu", emulate] if emulate else []
    record: dict = {"emulate": emulate, "numerics": numerics, "stages": {}}
    chain = commands(out, params)
    names = [name for name, _ in chain]
    for flag, value in (("--start", start), ("--until", until)):
        if value is not None and value not in names:
            sys.exit(f"{flag} {value}: not a stage of the chain ({', '.join(names)})")
    first = names.index(start) if start else 0
    last = names.index(until) + 1 if until else len(names)
    for name, args in chain[first:last]:
        before = {p for p in out.iterdir()}
        t0 = time.time()
        res = subprocess.run([*prefix, str(PYTHON), "-m", "stages", *args], cwd=ROOT,
                             capture_output=True, text=True)  # fmt: skip
        if res.returncode != 0:
            sys.exit(f"{name} failed under {emulate or 'this CPU'}:\n{res.stderr[-3000:]}")
        made = sorted(p for p in out.iterdir() if p not in before)
        record["stages"][name] = {p.name: md5(p) for p in made}
        print(f"{name}: {time.time() - t0:.0f} s, {len(made)} files", flush=True)
    machine = subprocess.run([*prefix, str(PYTHON), "-m", "stages", "machine", "--params",
                              str(params), "--write", str(out / "machine.json")], cwd=ROOT,
                             capture_output=True, text=True)  # fmt: skip
    if machine.returncode == 0:
        record["machine"] = json.loads((out / "machine.json").read_text())
    (out / "hashes.json").write_text(json.dumps(record, indent=1))


def compare(a: Path, b: Path) -> None:
    """Every output file of the chain in both folders, by md5 (the machines from hashes.json)."""
    for label, d in (("A", a), ("B", b)):
        r = json.loads((d / "hashes.json").read_text())
        m = r.get("machine", {})
        print(f"{label}: {m.get('cpu', '?')} ({m.get('vendor', '?')}), emulated as "
              f"{r['emulate'] or 'no'}, numerics {r['numerics']}, ATen {m.get('aten_capability')}"
              f", MKL {m.get('mkl_branch')}")  # fmt: skip
    skip = {"params.yaml", "hashes.json", "machine.json"}
    names = sorted(p.name for p in a.iterdir() if p.is_file() and p.name not in skip)
    same = 0
    for name in names:
        ok = (b / name).is_file() and md5(a / name) == md5(b / name)
        same += ok
        print(f"  {'same' if ok else 'DIFF'}  {name}")
    print(f"{same} of {len(names)} files identical")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--out", type=Path, required=True)
    r.add_argument("--emulate", help="a qemu-x86_64 CPU model, e.g. Haswell-noTSX")
    r.add_argument("--numerics", choices=("portable", "native"), default="portable")
    r.add_argument("--start", help="resume at this stage (the earlier ones' files are in --out)")
    r.add_argument("--until", help="stop after this stage")
    c = sub.add_parser("compare")
    c.add_argument("a", type=Path)
    c.add_argument("b", type=Path)
    args = ap.parse_args()
    if args.cmd == "run":
        run(args.out, args.emulate, args.numerics, args.start, args.until)
    else:
        compare(args.a, args.b)


if __name__ == "__main__":
    main()
