"""The claims this project tests, one row each (pipeline.claims judges them), and the report's
label of every sample set a method makes.

Text the report and the across-seed page read, kept apart from the method modules that train and
draw: editing a claim or a label reruns the report, never a training or sampling stage. Each
method's rows take `chain` (the main STIC chain r1..rN) and `role(key, default)` (the set that
plays a role in this run: an ablation, a peer).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from pipeline.claims import Claim, Quantity

Role = Callable[[str, str], str]

# sample-set name -> its label in the report (the methods' main sets and their other sets)
LABELS: dict[str, str] = {
    "stic": "STIC",
    "jem": "JEM",
    "score_stic": "Score-STIC",
    "score_stic_short": "Score-STIC at STIC's sampling cost",
    "attentive_stic": "Attentive-STIC",
    "attentive_random": "Attentive-STIC, random windows (exact)",
    "attentive_full": "full-image GRMALA, same pixel budget",
    "sgld": "classifier + SGLD (control)",
    "regene": "ReGene",
    "acgan": "AC-GAN",
    "acgan_matched": "AC-GAN at Wang & Torr's training cost",
    "wang_torr": "Wang & Torr",
    "wang_torr_plain": "Wang & Torr, all off (plain)",
}


def label(name: str) -> str | None:
    """The report label of a sample set some method makes under this name, None if none does."""
    return LABELS.get(name)


# The papers' words each paper claim rests on (docs/methods.md quotes them in context)
STIC_ROUNDS = (
    "re-estimates the class boundary in a recurrent fashion to improve both the "
    "classification accuracy and quality of synthetic images"
)
STIC_SOFT = (
    "the mixing of the hard fake samples (…), and the soft fake samples (…) improves "
    "class interpolation"
)
SCORE = (
    "the synthesis using a class conditional score classifier (Score-STIC) instead of a "
    "normal image classifier and show improved results"
)
REGENE_LABELS = (
    "given a class, we show that these representations when smartly manipulated "
    "using convex combinations retain the same class label"
)
REGENE_ACCURACY = "higher classification accuracy than existing conditional generative models"
WT_COMPARABLE = "being comparable to the state-of-the-art generative models (e.g., DDPMs and GANs)"
WT_COMPONENTS = {
    "views": "a mask-based stochastic reconstruction module to make the gradients "
    "semantic-aware to synthesize plausible images",
    "progressive": "a progressive-resolution technique to guarantee fidelity",
    "distance": "a distance metric loss and a non-trivial distribution loss to ensure "
    "classification neural networks can synthesize diverse and high-fidelity images",
}
WT_COMPONENTS["distribution"] = WT_COMPONENTS["distance"]


def stic(chain: Sequence[str], role: Role) -> list[Claim]:
    """STIC's claims."""
    first, last = (chain[0], chain[-1]) if chain else ("r1", "r1")
    fid = "judge_fid"
    return [
        Claim("stic_rounds_quality", "STIC's rounds improve sample quality", "STIC (Pal et al.)",
              Quantity(last, fid), Quantity(first, fid), "lower",
              f"the last chain round ({last}) against the first ({first}); a later round is "
              "also more training (the matched control is the next row)",
              kind="paper", source=STIC_ROUNDS),
        Claim("stic_rounds_accuracy", "STIC's rounds improve real-test accuracy", "STIC",
              Quantity(last, "acc"), Quantity("r0", "acc"), "higher",
              "the last round against r0; one held-out image is 100 / n_test points (0.1 on "
              "mnist5k's 1,000)", kind="paper", source=STIC_ROUNDS),
        Claim("stic_soft_interpolation", "Mixing hard and soft fakes improves class interpolation",
              "STIC", Quantity(first, "interpolation_error"),
              Quantity(role("hard_only", "hard_only"), "interpolation_error"), "lower",
              "the round with soft fakes against the same round trained on hard fakes only",
              kind="paper", source=STIC_SOFT),
        Claim("stic_rounds_vs_longer", "A round adds more than its training steps", "this project",
              Quantity(last, fid), Quantity(role("long", "long"), fid), "lower",
              f"the last round ({last}) against one round trained for the chain's total steps "
              "from the same start"),
        Claim("grmala_vs_langevin", "GRMALA (Gram term + MH) beats plain Langevin", "STIC",
              Quantity(first, fid), Quantity(role("langevin", "langevin"), fid), "lower",
              "same training budget, Gram term and MH both off in the Langevin row"),
        Claim("gram_helps", "The Gram term improves samples", "STIC", Quantity(first, fid),
              Quantity(role("no_gram", "no_gram"), fid), "lower"),
        Claim("mh_helps", "The MH correction improves samples", "STIC", Quantity(first, fid),
              Quantity(role("no_mh", "no_mh"), fid), "lower"),
        Claim("mixup_interpolation", "Vicinal risk (mixup) smooths class boundaries", "STIC",
              Quantity(first, "interpolation_error"),
              Quantity(role("no_mixup", "no_mixup"), "interpolation_error"), "lower"),
        Claim("stic_beats_control", "STIC training beats the classifier + SGLD control",
              "this project", Quantity(last, fid), Quantity(role("sgld", "sgld"), fid),
              "lower"),
        Claim("stic_matches_jem", "STIC generates at least as well as JEM, its code base",
              "this project", Quantity(last, fid), Quantity(role("jem", "jem"), fid), "lower",
              "the two at training costs within 10% of each other (the cost column)"),
        Claim("stic_vs_gan", "STIC is competitive with AC-GAN", "this project",
              Quantity(last, fid), Quantity(role("acgan", "acgan"), "judge_fid_x2"), "lower",
              "competitive: STIC's judge-FID below twice AC-GAN's"),
    ]  # fmt: skip


def score_stic(chain: Sequence[str], role: Role) -> list[Claim]:
    """Score-STIC's claim: it improves on STIC's last round, with its own sampler's budget and
    at STIC's (the matched control)."""
    last = chain[-1] if chain else "r1"
    return [
        Claim("score_beats_stic", "Score-STIC improves on STIC", "STIC",
              Quantity(role("score_stic", "score_stic"), "judge_fid"),
              Quantity(last, "judge_fid"), "lower", kind="paper", source=SCORE,
              note="Score-STIC samples with NCSN's schedule, five times STIC's passes; the "
              "matched control is the next row"),
        Claim("score_beats_stic_matched", "Score-STIC improves on STIC at STIC's sampling cost",
              "STIC", Quantity(role("score_stic_short", "score_stic_short"), "judge_fid"),
              Quantity(last, "judge_fid"), "lower", kind="paper", source=SCORE,
              note="the same score classifier drawing 20 steps a level, STIC's passes a sample"),
    ]  # fmt: skip


def attentive_stic(chain: Sequence[str], role: Role) -> list[Claim]:
    """Attentive-STIC's claim: glimpses beat full-image steps at equal budget."""
    return [Claim("attentive_vs_full", "Attentive drawing beats full-image GRMALA at equal budget",
                  "this project (Attentive-STIC)",
                  Quantity(role("attentive", "attentive_stic"), "judge_fid"),
                  Quantity(role("attentive_full", "attentive_full"), "judge_fid"),
                  "lower")]  # fmt: skip


def regene(chain: Sequence[str], role: Role) -> list[Claim]:
    """ReGene's claims: the label guarantee, and discriminability over AC-GAN."""
    name = role("regene", "regene")
    return [
        Claim("regene_labels", "ReGene keeps labels: convex latent combinations stay in class",
              "ReGene", Quantity(name, "label_guarantee"), Quantity("exact", "one"), "higher",
              "a guarantee: must be exactly 1", kind="paper", source=REGENE_LABELS),
        Claim("regene_vs_acgan", "ReGene beats AC-GAN on discriminability", "ReGene",
              Quantity(name, "discriminability"),
              Quantity(role("acgan", "acgan"), "discriminability"), "higher",
              "discriminability: the judge's accuracy on the samples' classes", kind="paper",
              source=REGENE_ACCURACY),
    ]  # fmt: skip


def wang_torr(chain: Sequence[str], role: Role) -> list[Claim]:
    """Wang & Torr's claims: a classifier generates comparably to a GAN and to a diffusion-family
    model, and each of the four components helps (all on against all but it)."""
    full = role("wang_torr", "wang_torr")
    peers = (("acgan", "AC-GAN", "a GAN"), ("score_stic", "Score-STIC", "a score model"),
             ("acgan_matched", "AC-GAN at its training cost", "a GAN"))  # fmt: skip
    return [
        *(Claim(f"wang_torr_vs_{peer}", f"Wang & Torr's classifier is comparable to {what} "
                f"({name})", "Wang & Torr", Quantity(full, "judge_fid"),
                Quantity(role(peer, peer), "judge_fid_x2"), "lower",
                f"comparable: judge-FID below twice {name}'s", kind="paper",
                source=WT_COMPARABLE)
          for peer, name, what in peers),
        *(Claim(f"wang_torr_{c}", f"Wang & Torr's {c} component helps", "Wang & Torr",
                Quantity(full, "judge_fid"),
                Quantity(role(f"wang_torr_no_{c}", f"wang_torr_no_{c}"), "judge_fid"), "lower",
                "all components against all but this one", kind="paper",
                source=WT_COMPONENTS[c])
          for c in ("views", "distance", "distribution", "progressive")),
    ]  # fmt: skip


# in the report's order (the registry's: pipeline.methods.METHODS); JEM, SGLD and AC-GAN (the
# GAN the others are measured against) make no claim here
ROWS: tuple[Callable[[Sequence[str], Role], list[Claim]], ...] = (
    stic, score_stic, attentive_stic, regene, wang_torr,
)  # fmt: skip


def claims(chain: Sequence[str], rows: Mapping[str, str] | None = None) -> list[Claim]:
    """Every claim, on this run's rows: `rows` maps a role to the sample set that plays it, where a
    run's set has another name than the role's own (absent roles keep their names)."""
    rows = rows or {}

    def role(key: str, default: str) -> str:
        return rows.get(key, default)

    return [c for make in ROWS for c in make(chain, role)]
