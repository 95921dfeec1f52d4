"""`cgen sample`: N samples of chosen classes (or two-class mixes) from a trained model of the
pipeline, drawn with the method's own evaluation sampler and the settings its sample stage reads.

    bin/cgen sample stic --round r1 --classes 7 --classes 3 --n 16 --seed 0 --out out/r1
    bin/cgen sample jem --mix 3,8 --n 8 --out out/jem_mix
    bin/cgen sample acgan --classes 0 --model data/models/acgan.pt --out out/acgan

Every method draws exactly as its sample stage does (the library functions that stage calls, the
params.yaml sections it reads: `SECTIONS` of its stage module), only for the targets asked: `--n`
samples of each `--classes` (every class when neither --classes nor --mix is given), then `--n`
of each `--mix a,b`, whose weights are drawn from the method's own soft-target Dirichlet and
sorted by the weight of a. The checkpoints and the prepared data default to the paths dvc.yaml's
sample stage of the method passes (read from its `cmd`; the one place paths live). It writes,
into `--out`: samples.pt (a sample set, as every sample stage writes it: `cgen evaluate` reads
it), grid.png (one row per class or mix) and sample.json (what was drawn, from what, with which
settings). Every check (method of the model file, class range, files, --n) runs before any
sampling, and nothing is written when one fails.
"""

from __future__ import annotations

import dataclasses
import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import torch
import typer

from pipeline.config import read_yaml
from pipeline.errors import CheckpointError, ConfigError
from stages.skeleton import PARAMS_DEFAULT, Params

if TYPE_CHECKING:  # the draws import the library when they run (a light `cgen --help`)
    from pipeline.chains import Drawing
    from pipeline.data import ImageSet
    from pipeline.eval_sets import EvalChainsConfig

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

# what a checkpoint's training stage wrote it as (`made_by`): a STIC round (rK, with its chains),
# a classifier trained on real data only (the baseline r0, a judge), or the method it names
CLASSIFIERS = frozenset({"classifier", "stic"})  # what W&T, the SGLD control and ReGene invert
GRID_COLUMNS = 16  # samples of each class or mix shown in the grid (samples.pt has all --n)
DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class Source:
    """Where a method's samples come from: its sample stage's `cgen` command in dvc.yaml, the
    option of that command naming the network drawn with, what may have written that network
    (`made_by`), and whether its sampler draws for a mix of classes."""

    command: str
    model: str
    makers: frozenset[str]
    wants: str  # the network, in words, for errors
    mixes: bool
    encoder: str | None = None  # ReGene: the option naming the classifier whose latents it decodes


SOURCES: dict[str, Source] = {
    "stic": Source("stic-sample", "--model", frozenset({"stic"}), "a STIC round (r1, ...)", True),
    "jem": Source("jem-sample", "--model", frozenset({"jem"}), "the JEM classifier", True),
    "score_stic": Source("score-sample", "--model", frozenset({"score_stic"}),
                         "the Score-STIC classifier", True),
    "attentive_stic": Source("attentive", "--model", frozenset({"stic"}),
                             "a STIC round (r1, ...)", True),
    "sgld": Source("sgld", "--classifier", CLASSIFIERS, "a classifier round (r0, r1, ...)", True),
    "acgan": Source("acgan-sample", "--model", frozenset({"acgan"}), "an AC-GAN generator", False),
    "regene": Source("regene-sample", "--decoder", frozenset({"regene"}), "the ReGene decoder",
                     False, encoder="--classifier"),
    "wang_torr": Source("wang-torr", "--classifier", CLASSIFIERS,
                        "a classifier (its own, wang_torr; r0, r1, ...)", False),
}  # fmt: skip


# --- the model files: what wrote them ---------------------------------------------------------


def made_by(payload: Mapping[str, Any]) -> str:
    """What wrote a checkpoint, from the keys its training stage stores (stages.outputs'
    `write_training` extras): 'acgan' (a generator beside its discriminator), the method it names
    ('jem', 'score_stic', 'regene'), 'stic' (a round: its name and chains), 'classifier' (a round
    without chains: the baseline r0, a judge), else 'unknown'."""
    if "discriminator_state" in payload:
        return "acgan"
    if "method" in payload:
        return str(payload["method"])
    if "round" in payload:
        return "stic" if payload.get("chains") else "classifier"
    return "unknown"


def describe(payload: Mapping[str, Any]) -> str:
    """A checkpoint's network in words, e.g. 'STIC round r1', 'an AC-GAN generator (acgan)'."""
    kind = made_by(payload)
    return {
        "acgan": f"an AC-GAN generator ({payload.get('method')})",
        "stic": f"STIC round {payload.get('round')}",
        "classifier": f"a classifier trained on real data only ({payload.get('round')})",
        "jem": "the JEM classifier",
        "score_stic": "the Score-STIC classifier",
        "regene": "the ReGene decoder",
    }.get(kind, f"a network of {kind}")


def check_maker(
    path: Path,
    payload: Mapping[str, Any],
    makers: frozenset[str],
    wants: str,
    method: str,
    name: str | None = None,
) -> None:
    """Refuse a model file another method wrote, or, where the file names its set (a STIC
    round, an AC-GAN variant) and `name` is given, another set's."""
    kind = made_by(payload)
    if kind not in makers:
        raise CheckpointError(
            f"{path} holds {describe(payload)}, but `sample {method}` draws from {wants}"
        )
    own = {"stic": payload.get("round"), "acgan": payload.get("method")}.get(kind)
    if name is not None and own is not None and own != name:
        raise CheckpointError(f"{path} holds {describe(payload)}, but --round/--set is {name}")


# --- dvc.yaml: where the sample stage reads its files ------------------------------------------

TEMPLATE = re.compile(r"\$\{([^}]+)\}")


@dataclass(frozen=True)
class SampleStage:
    """The dvc.yaml stage running `bin/cgen COMMAND`: its name, its words (templates unresolved)
    and, for a foreach stage, its sets (set name -> item)."""

    name: str
    words: list[str]
    sets: dict[str, Any] | None


def find_stage(dvc: Mapping[str, Any], command: str, params: Mapping[str, Any]) -> SampleStage:
    """The stage of `dvc` (dvc.yaml, parsed) whose cmd is `bin/cgen COMMAND ...`."""
    for name, stage in (dvc.get("stages") or {}).items():
        body = stage.get("do", stage) if isinstance(stage, Mapping) else {}
        words = shlex.split(str(body.get("cmd", "")))
        if words[:2] != ["bin/cgen", command]:
            continue
        sets = None
        if "foreach" in stage:
            items = resolve(str(stage["foreach"]), params, None, None, whole=True)
            sets = dict(items) if isinstance(items, Mapping) else {str(i): i for i in items}
        return SampleStage(name, words, sets)
    raise ConfigError(f"dvc.yaml: no stage runs `bin/cgen {command}`")


def resolve(text: str, params: Mapping[str, Any], key: str | None, item: Any, whole=False) -> Any:
    """`text` with DVC's templates filled in: ${key} and ${item...} of a foreach stage, any
    other ${a.b} from params.yaml. `whole`: `text` is one template; its value as it is."""

    def value(name: str) -> Any:
        if name == "key" and key is not None:
            return key
        node, parts = params, name.split(".")
        if parts[0] == "item" and key is not None:
            node, parts = item, parts[1:]
        for part in parts:
            if not isinstance(node, Mapping) or part not in node:
                raise ConfigError(f"dvc.yaml: ${{{name}}}: no such key in params.yaml")
            node = node[part]
        return node

    if whole:
        match = TEMPLATE.fullmatch(text.strip())
        if match is None:
            raise ConfigError(f"dvc.yaml: foreach {text!r}: expected one ${{...}} template")
        return value(match.group(1))
    return TEMPLATE.sub(lambda m: str(value(m.group(1))), text)


def stage_path(stage: SampleStage, option: str, name: str, params: Mapping[str, Any]) -> Path:
    """The path the stage passes after `option` for set `name`, relative to the repository."""
    if option not in stage.words[:-1]:
        raise ConfigError(f"dvc.yaml: stage {stage.name} passes no {option}")
    raw = stage.words[stage.words.index(option) + 1]
    item = stage.sets.get(name) if stage.sets is not None else None
    return Path(resolve(raw, params, name if stage.sets is not None else None, item))


def choose_set(method: str, given: str | None, stage: SampleStage) -> str:
    """The sample set drawn: --round/--set among the stage's foreach sets (the method's own
    name, or the only set, when left out); the method's name for a stage of one set."""
    if stage.sets is None:
        if given not in (None, method):
            raise ConfigError(f"--set {given}: {method} makes one set ({method}); leave it out")
        return method
    names = list(stage.sets)
    if given is None:
        if method in names or len(names) == 1:
            return method if method in names else names[0]
        raise ConfigError(f"--round/--set: {method} draws one of {', '.join(names)}; name one")
    if given not in names:
        raise ConfigError(
            f"--round/--set {given}: not one of {method}'s sets in dvc.yaml ({', '.join(names)})"
        )
    return given


# --- the request: which targets ----------------------------------------------------------------


def parse_mix(text: str) -> tuple[int, int]:
    """'3,8' -> (3, 8)."""
    parts = text.split(",")
    try:
        a, b = (int(p) for p in parts)
    except ValueError:
        raise ConfigError(f"--mix {text}: expected two class indices, e.g. --mix 3,8") from None
    if a == b:
        raise ConfigError(f"--mix {text}: needs two different classes")
    return a, b


def check_classes(classes: list[int], mixes: list[tuple[int, int]], names: tuple[str, ...]) -> None:
    k = len(names)
    for c in [*classes, *(c for pair in mixes for c in pair)]:
        if not 0 <= c < k:
            raise ConfigError(
                f"--classes/--mix {c}: out of range; the data has {k} classes, 0 to {k - 1} "
                f"({', '.join(names)})"
            )


def sample_targets(
    classes: list[int],
    mixes: list[tuple[int, int]],
    n: int,
    num_classes: int,
    alpha: float,
    gen: torch.Generator,
) -> torch.Tensor:
    """(N, K) targets: n one-hot rows of each class, then n rows of each mix (a, b), whose
    weights are drawn from the symmetric Dirichlet(alpha) on {a, b} (the method's soft targets,
    `pipeline.chains.chain_targets`, restricted to the pair asked) and sorted by the weight of a."""
    from pipeline.draws import dirichlet

    hard = torch.nn.functional.one_hot(torch.tensor(classes, dtype=torch.long), num_classes)
    rows = [hard.float().repeat_interleave(n, dim=0)]
    for a, b in mixes:
        w = dirichlet(alpha, n, 2, gen)  # (n, 2)
        w = w[w[:, 0].argsort(stable=True)]  # the grid's row runs from mostly b to mostly a
        mix = torch.zeros(n, num_classes)
        mix[:, a], mix[:, b] = w[:, 0], w[:, 1]
        rows.append(mix)
    return torch.cat(rows)


@dataclass(frozen=True)
class Job:
    """One `cgen sample` request, checked: what every method's draw needs."""

    name: str  # the sample set: a STIC round, a variant, or the method's own set
    cfg: dict[str, Any]  # the sections the method's sample stage reads
    model: Path
    encoder: Path | None
    data: ImageSet
    classes: list[int]
    mixes: list[tuple[int, int]]
    n: int
    seed: int
    device: torch.device

    def generator(self, purpose: str) -> torch.Generator:
        from pipeline.runtime import generator

        return generator(self.seed, self.name, purpose)

    def targets(self, alpha: float) -> torch.Tensor:
        k = self.data.num_classes
        return sample_targets(self.classes, self.mixes, self.n, k, alpha, self.generator("targets"))

    def labels(self) -> torch.Tensor:
        """(N,) the classes asked, n each (hard-only methods)."""
        return torch.tensor(self.classes, dtype=torch.long).repeat_interleave(self.n)

    def section(self, key: str) -> Any:
        return self.cfg[key.format(variant=self.name, round=self.name)]


@dataclass
class Drawn:
    images: torch.Tensor  # (N, C, H, W) float in [-1, 1]
    targets: torch.Tensor  # (N, K)
    title: str
    metrics: dict[str, float | None]


# --- the draws: each method's own sampler, on the targets asked --------------------------------


def fresh_chains(
    job: Job,
    classifier: torch.nn.Module,
    drawing: Drawing,
    ev: EvalChainsConfig,
    start_log_eps: torch.Tensor,
    targets: torch.Tensor,
) -> torch.Tensor:
    """A chain-trained classifier's evaluation draw (`pipeline.eval_sets.evaluation_set`'s
    library calls) for `targets`: fresh chains from the canvas, each from its class's step
    size (`start_log_eps` (K,)), adapting during the burn-in."""
    from pipeline.chains import exact_grams
    from pipeline.eval_sets import draw_fresh, target_fn

    grams = exact_grams(classifier, job.data, drawing.sampler)
    drawn = draw_fresh(
        target_fn(classifier, targets, drawing, grams, job.device), len(targets), job.data.shape,
        drawing.sampler, drawing.canvas, ev, start_log_eps[targets.argmax(1)],
        job.generator("chains"), device=job.device, where=f"sample {job.name}",
    )  # fmt: skip
    return drawn.images


def agreement_of(
    classifier: torch.nn.Module, images: torch.Tensor, targets: torch.Tensor, k: int
) -> dict:
    from pipeline.infer import agreement

    return {"classifier_agreement": agreement(classifier, images, targets, k)}


def round_sampler(job: Job, payload: Mapping[str, Any]) -> tuple[Drawing, torch.Tensor]:
    """A STIC round's evaluation drawing (its checkpoint's sampler, target and canvas) and the
    (K,) step sizes its fresh chains start from (stic.eval.eps_start, from its chains)."""
    from pipeline.chains import ChainBuffer, ChainTraining
    from pipeline.config import from_dict
    from pipeline.eval_sets import eval_start_log_eps

    setting = from_dict(ChainTraining, payload["config"]["setting"], f"{job.model}: setting")
    buffer = ChainBuffer(**payload["chains"])
    return setting.drawing, eval_start_log_eps(job.section("stic.eval"), buffer, setting.sampler)


def draw_stic(job: Job) -> Drawn:
    """As stage stic_sample: the round's sampler from its checkpoint, stic.eval's protocol."""
    from pipeline.checkpoint import load_classifier

    classifier, payload = load_classifier(job.model, device=job.device)
    drawing, start = round_sampler(job, payload)
    ev = job.section("stic.eval")
    targets = job.targets(drawing.soft_alpha)
    images = fresh_chains(job, classifier, drawing, ev, start, targets)
    synthesis = payload["config"]["synthesis"]
    return Drawn(images, targets, f"STIC {job.name} ({synthesis}): {ev.steps} steps",
                 agreement_of(classifier, images, targets, job.data.num_classes))  # fmt: skip


def draw_jem(job: Job) -> Drawn:
    """As stage jem_sample: jem's sampler and jem.eval, from the buffer's learned step sizes."""
    from pipeline.chains import ChainBuffer
    from pipeline.checkpoint import load_classifier
    from pipeline.eval_sets import eval_start_log_eps

    cfg = job.section("jem")
    classifier, payload = load_classifier(job.model, device=job.device)
    start = eval_start_log_eps(cfg.eval, ChainBuffer(**payload["chains"]), cfg.sampler)
    targets = job.targets(cfg.setting.drawing.soft_alpha)
    images = fresh_chains(job, classifier, cfg.setting.drawing, cfg.eval, start, targets)
    return Drawn(images, targets, f"JEM: fresh chains, {cfg.eval.steps} SGLD steps",
                 agreement_of(classifier, images, targets, job.data.num_classes))  # fmt: skip


def draw_sgld(job: Job) -> Drawn:
    """As stage sgld: JEM's evaluation draw on a classifier without generative training."""
    from pipeline.checkpoint import load_classifier
    from pipeline.methods.sgld import drawing
    from pipeline.models import expected_args
    from pipeline.samplers import initial_log_eps

    expected = expected_args(job.section("baseline.model"), job.data.shape[0])
    classifier, _ = load_classifier(job.model, expected, job.device)
    draw = drawing(job.section("jem.sampler"), job.section("jem.loss"), job.section("jem.chains"))
    targets = job.targets(draw.soft_alpha)
    start = initial_log_eps(draw.sampler, job.data.num_classes)  # no training chains
    ev = job.section("jem.eval")
    images = fresh_chains(job, classifier, draw, ev, start, targets)
    return Drawn(images, targets, f"SGLD control: JEM's sampler, {ev.steps} steps",
                 agreement_of(classifier, images, targets, job.data.num_classes))  # fmt: skip


def draw_score(job: Job) -> Drawn:
    """As stage score_sample: the variant's annealed Langevin on the class score
    (`score.sample`)."""
    from pipeline.checkpoint import load_classifier
    from pipeline.methods import score

    variants = {job.name: job.section("score_stic.variants.{variant}")}
    cfg = score.drawing_of(job.section("score_stic.noise"), job.section("score_stic.sampler"),
                           job.section("score_stic.sampling"), variants, job.name)  # fmt: skip
    net, _ = load_classifier(job.model, device=job.device)
    targets = job.targets(cfg.sampling.soft_alpha)
    run = score.sample(net, targets, cfg, job.generator("chains"), shape=job.data.shape,
                       real=job.data, device=job.device)  # fmt: skip
    at_min = net.at(cfg.noise.sigma_min)
    return Drawn(run.x, targets, f"{job.name}: annealed Langevin, {cfg.noise.levels} levels",
                 agreement_of(at_min, run.x, targets, job.data.num_classes))  # fmt: skip


def draw_attentive(job: Job) -> Drawn:
    """As stage attentive: the variant's glimpses with the round's sampler, stic.eval's step
    sizes (`pipeline.methods.attentive.draw`)."""
    from pipeline.chains import exact_grams
    from pipeline.checkpoint import load_classifier
    from pipeline.config import variant as config_variant
    from pipeline.eval_sets import target_fn
    from pipeline.methods.attentive import AttentiveConfig, draw

    variants = {job.name: job.section("attentive_stic.variants.{variant}")}
    cfg = config_variant(AttentiveConfig, job.section("attentive_stic.draw"), variants, job.name,
                         "attentive_stic")  # fmt: skip
    classifier, payload = load_classifier(job.model, device=job.device)
    drawing, start = round_sampler(job, payload)
    targets = job.targets(drawing.soft_alpha)
    ev = job.section("stic.eval")
    gen = job.generator("chains")
    x0 = drawing.canvas.draw((len(targets), *job.data.shape), gen).to(job.device)
    grams = exact_grams(classifier, job.data, drawing.sampler)
    result = draw(
        target_fn(classifier, targets, drawing, grams, job.device), x0,
        start[targets.argmax(1)], drawing.sampler, cfg, gen, adapt_steps=ev.burn_in,
        where=f"sample {job.name}",
    )  # fmt: skip
    return Drawn(result.x, targets, f"{job.name}: {cfg.glimpses} glimpses ({cfg.mask}, "
                 f"{cfg.order})", agreement_of(classifier, result.x, targets,
                                               job.data.num_classes))  # fmt: skip


def pick(labels: torch.Tensor, classes: list[int]) -> torch.Tensor:
    """Indices of the rows of each class asked, in the order asked."""
    return torch.cat([torch.nonzero(labels == c).flatten() for c in classes])


def draw_acgan(job: Job) -> Drawn:
    """As stage acgan_sample: G(z, c), z ~ N(0, I) (`acgan.sample`), n of every class drawn and
    the classes asked kept: a class's samples are the same whichever other classes are asked."""
    from pipeline.checkpoint import load_module
    from pipeline.methods import acgan
    from pipeline.samples import hard_targets

    generator, payload = load_module(job.model, acgan.build_generator, device=job.device)
    if generator.num_classes != job.data.num_classes:
        raise CheckpointError(f"{job.model}: a generator of {generator.num_classes} classes, but "
                              f"the data has {job.data.num_classes}")  # fmt: skip
    images, labels = acgan.sample(generator, job.n, job.generator("generator"))
    keep = pick(labels, job.classes)
    return Drawn(images[keep], hard_targets(labels[keep], job.data.num_classes),
                 f"{job.name} ({payload['model_args']['arch']} arch)", {})  # fmt: skip


def draw_regene(job: Job) -> Drawn:
    """As stage regene_sample: Dirichlet convex combinations of regene.combine.k latents of
    class-c training images (`regene.combine_latents`, n of every class), decoded for the
    classes asked."""
    from pipeline.checkpoint import load_classifier, load_module
    from pipeline.infer import embed_all, predict_real
    from pipeline.methods import regene
    from pipeline.samples import hard_targets

    cfg = dataclasses.replace(job.section("regene.combine"), per_class=job.n)
    k, x = job.data.num_classes, job.data.float_images()
    encoder, _ = load_classifier(job.encoder, device=job.device)
    decoder, _ = load_module(job.model, regene.build_decoder, device=job.device)
    latents, predicted = embed_all(encoder, x), predict_real(encoder, x, k)
    combined, labels = regene.combine_latents(
        latents, predicted, job.data.labels, k, cfg, job.generator("combine")
    )
    keep = pick(labels, job.classes)
    images = regene.decode(decoder, combined[keep])
    return Drawn(images, hard_targets(labels[keep], k),
                 f"{job.name}: convex combinations of {cfg.k} latents",
                 {"label_guarantee": regene.label_kept(encoder.head, combined[keep], labels[keep],
                                                       k)})  # fmt: skip


def draw_wang_torr(job: Job) -> Drawn:
    """As stage wang_torr: the variant's input optimisation (`wang_torr.synthesize`, in batches
    of classes_per_batch classes as `wang_torr.sample` runs it) for the classes asked only."""
    from pipeline.checkpoint import load_classifier
    from pipeline.config import variant as config_variant
    from pipeline.methods import wang_torr
    from pipeline.samples import hard_targets

    variants = {job.name: job.section("wang_torr.variants.{variant}")}
    cfg = config_variant(wang_torr.WangTorrConfig, job.section("wang_torr.sampler"), variants,
                         job.name, "wang_torr")  # fmt: skip
    if cfg.distribution_weight > 0 and job.n < 2:
        raise ConfigError(f"--n 1: {job.name}'s distribution loss needs at least 2 per class")
    k = job.data.num_classes
    model, _ = load_classifier(job.model, device=job.device)
    stats = wang_torr.class_feature_stats(model, job.data.float_images(), job.data.labels, k)
    labels, gen, images = job.labels(), job.generator("sampler"), []
    per_batch = cfg.classes_per_batch * job.n
    for start in range(0, len(labels), per_batch):
        x, _ = wang_torr.synthesize(model, labels[start : start + per_batch], job.data.shape, cfg,
                                    stats, k, gen)  # fmt: skip
        images.append(x.cpu())
    images_ = torch.cat(images)
    targets = hard_targets(labels, k)
    return Drawn(images_, targets, f"{job.name}: Wang & Torr ({wang_torr.components(cfg)})",
                 agreement_of(model, images_, targets, k))  # fmt: skip


DRAWS: dict[str, Callable[[Job], Drawn]] = {
    "stic": draw_stic,
    "jem": draw_jem,
    "score_stic": draw_score,
    "attentive_stic": draw_attentive,
    "sgld": draw_sgld,
    "acgan": draw_acgan,
    "regene": draw_regene,
    "wang_torr": draw_wang_torr,
}


# --- the outputs -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SampleFiles:
    samples: Path
    grid: Path
    record: Path


def row_labels(job: Job, names: tuple[str, ...]) -> list[str]:
    """The grid's rows: each class asked, then each mix ('3|8', as the report's strips)."""
    return [names[c] for c in job.classes] + [f"{names[a]}|{names[b]}" for a, b in job.mixes]


def grid_images(images: torch.Tensor, n: int) -> torch.Tensor:
    """Of each group of n samples (a class or a mix, in order), up to GRID_COLUMNS spread evenly
    over the group (a mix's row then spans its weights): the grid's images, row by row."""
    shown = torch.linspace(0, n - 1, min(n, GRID_COLUMNS)).round().long()
    return images[torch.cat([g * n + shown for g in range(len(images) // n)])]


def write_outputs(job: Job, drawn: Drawn, out: Path, record: dict[str, Any]) -> SampleFiles:
    from pipeline.data import to_uint8
    from pipeline.figures import save_grid
    from pipeline.io import atomic_write_json
    from pipeline.samples import SampleSet, save_samples

    samples = SampleSet(to_uint8(drawn.images), drawn.targets, job.name, job.data.class_names)
    files = SampleFiles(out / "samples.pt", out / "grid.png", out / "sample.json")
    save_samples(samples, files.samples)
    labels = row_labels(job, samples.class_names)
    title = f"{drawn.title}; seed {job.seed}"
    save_grid(grid_images(samples.images, job.n), files.grid, len(labels), title, labels)
    atomic_write_json(files.record, record | {"num_samples": len(samples), **drawn.metrics})
    return files


# --- the command -------------------------------------------------------------------------------


@app.command()
def main(
    method: Annotated[str, typer.Argument(help=f"one of {', '.join(SOURCES)}")],
    out: Annotated[
        Path, typer.Option("--out", help="folder for samples.pt, grid.png, sample.json")
    ],
    set_name: Annotated[
        str | None,
        typer.Option("--round", "--set", help="STIC round, or the variant of a method with them"),
    ] = None,
    classes: Annotated[
        list[int] | None, typer.Option("--classes", help="a class to draw (repeat it); default all")
    ] = None,
    mix: Annotated[
        list[str] | None, typer.Option("--mix", help="two classes 'a,b' to mix (repeat it)")
    ] = None,
    n: Annotated[int, typer.Option("--n", help="samples of each class and of each mix")] = 16,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    model: Annotated[
        Path | None, typer.Option("--model", help="the network (default: dvc.yaml's path)")
    ] = None,
    encoder: Annotated[
        Path | None, typer.Option("--encoder", help="ReGene: the classifier it decodes latents of")
    ] = None,
    train: Annotated[
        Path | None, typer.Option("--train", help="prepared training split (default: dvc.yaml's)")
    ] = None,
    device: Annotated[
        str | None, typer.Option("--device", help="auto | cpu | cuda (default: runtime.device)")
    ] = None,
    dvc_file: Annotated[Path, typer.Option("--dvc-file")] = Path("dvc.yaml"),
    params: Params = PARAMS_DEFAULT,
) -> None:
    """Draw --n samples of each chosen class (and of each two-class mix) from a trained model,
    with its method's own evaluation sampler and settings, seeded."""
    job, record = plan(method, out, set_name, classes, mix, n, seed, model, encoder, train,
                       device, dvc_file, params)  # fmt: skip
    drawn = DRAWS[method](job)
    files = write_outputs(job, drawn, out, record)
    typer.echo(f"sample: {len(drawn.images)} samples of {job.name} in {files.samples}, "
               f"{files.grid}")  # fmt: skip


def stage_sections(method: str) -> Mapping[str, type]:
    """The params.yaml sections the method's sample stage reads: its module's `SECTIONS`
    (`{variant}`/`{round}` marking the set), imported statically (never loaded from a string:
    the import checks and the stage graph follow imports)."""
    if method == "stic":
        from stages.stic_sample import SECTIONS
    elif method == "jem":
        from stages.jem_sample import SECTIONS
    elif method == "score_stic":
        from stages.score_sample import SECTIONS
    elif method == "attentive_stic":
        from stages.attentive import SECTIONS
    elif method == "sgld":
        from stages.sgld import SECTIONS
    elif method == "acgan":
        from stages.acgan_sample import SECTIONS
    elif method == "regene":
        from stages.regene_sample import SECTIONS
    else:
        from stages.wang_torr import SECTIONS
    return SECTIONS


def plan(
    method: str,
    out: Path,
    set_name: str | None,
    classes: list[int] | None,
    mix: list[str] | None,
    n: int,
    seed: int,
    model: Path | None,
    encoder: Path | None,
    train: Path | None,
    device: str | None,
    dvc_file: Path,
    params: Path,
) -> tuple[Job, dict[str, Any]]:
    """Every check of a request, before any work: the method, --n, the mixes, its parameter
    sections, the set, the files (and what wrote the model files), the classes."""
    from pipeline.checkpoint import read_checkpoint
    from pipeline.config import load_sections, to_dict
    from pipeline.data import load_image_set
    from pipeline.runtime import RuntimeConfig, configure

    if method not in SOURCES:
        raise ConfigError(f"{method}: not a method to sample; one of {', '.join(SOURCES)}")
    if n < 1:
        raise ConfigError(f"--n: must be at least 1, got {n}")
    if device is not None and device not in DEVICES:
        raise ConfigError(f"--device {device}: one of {', '.join(DEVICES)}")
    src = SOURCES[method]
    mixes = [parse_mix(m) for m in mix or []]
    if mixes and not src.mixes:
        with_mixes = ", ".join(m for m, s in SOURCES.items() if s.mixes)
        raise ConfigError(f"--mix: {method} draws hard classes only; mixes: {with_mixes}")
    raw = read_yaml(params)
    stage = find_stage(read_yaml(dvc_file), src.command, raw)
    name = choose_set(method, set_name, stage)
    sections = {k.format(variant=name, round=name): v for k, v in stage_sections(method).items()}
    cfg = load_sections(params, {"runtime": RuntimeConfig, **sections})
    root = dvc_file.parent
    model = model or root / stage_path(stage, src.model, name, raw)
    if encoder is not None and src.encoder is None:
        raise ConfigError(f"--encoder: only regene decodes a classifier's latents, not {method}")
    if src.encoder is not None:
        encoder = encoder or root / stage_path(stage, src.encoder, name, raw)
    train = train or root / stage_path(stage, "--train", name, raw)
    # the same-set check where the file names its set (stic's round, an AC-GAN variant)
    own_set = name if method in ("stic", "acgan") else None
    check_maker(model, read_checkpoint(model), src.makers, src.wants, method, own_set)
    if encoder is not None:
        check_maker(encoder, read_checkpoint(encoder), CLASSIFIERS,
                    "a classifier round (r0, r1, ...)", method)  # fmt: skip
    data = load_image_set(train)
    chosen = list(classes) if classes else ([] if mixes else list(range(data.num_classes)))
    check_classes(chosen, mixes, data.class_names)
    runtime = dataclasses.replace(cfg["runtime"], seed=seed, device=device or cfg["runtime"].device)
    job = Job(name, cfg, model, encoder, data, chosen, mixes, n, seed, configure(runtime))
    record = {
        "method": method,
        "set": name,
        "dvc_stage": stage.name,
        "model": str(model),
        "encoder": None if encoder is None else str(encoder),
        "train": str(train),
        "classes": chosen,
        "mixes": [list(m) for m in mixes],
        "n": n,
        "seed": seed,
        "device": str(job.device),
        "params": {k: to_dict(v) for k, v in cfg.items() if k != "runtime"},
    }
    return job, record
