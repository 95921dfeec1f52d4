"""Every method's params.yaml section as a dataclass, with the method modules imported
statically: what reads all methods' sections at once (the parameter gate's composition of the
whole file, the report).

The imports below are the registry. The stage graph (`cgen dvc-deps`) follows imports, so a stage
that uses this module depends on every method module it loads, and a stage that needs one method
imports that method's module itself. Nothing in the project loads a module by name but the
dispatcher (`stages.cli`), whose targets the graph generator resolves.
"""

from __future__ import annotations

from pipeline.methods import acgan, attentive, jem, regene, score, sgld, stic, wang_torr

# method name (its params.yaml section) -> its section's dataclass, in METHODS' order (a test
# checks it)
CONFIGS: dict[str, type] = {
    "stic": stic.StiCConfig,
    "jem": jem.JEMConfig,
    "score_stic": score.ScoreStiCConfig,
    "attentive_stic": attentive.AttentiveMethodConfig,
    "sgld": sgld.SGLDControlConfig,
    "regene": regene.ReGeneConfig,
    "acgan": acgan.ACGANConfig,
    "wang_torr": wang_torr.WangTorrMethodConfig,
}
