"""Resume after an interruption gives the same final weights as an uninterrupted run, for every
long training loop: classifiers (tests/test_train.py), the AC-GAN and the ReGene decoder."""

from __future__ import annotations

import pytest
import torch
from support import tiny_section

from pipeline.methods import acgan, regene
from pipeline.resume import Snapshots


class Interrupt(Exception):
    """Stands in for a kill right after an epoch's snapshot."""


def crash_after(n_epochs):
    def on_epoch(epoch, row):
        if epoch == n_epochs:  # after n epochs (and their snapshots), during the next
            raise Interrupt

    return on_epoch


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(
        torch.equal(x, y)
        for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    )


def run_acgan(data, snapshots=None, on_epoch=None, init_seed=0):
    model = acgan.ACGANModelConfig(arch="small", z_dim=8, width=4, dropout=0.5)
    cfg = tiny_section("acgan.train", acgan.ACGANTrainConfig, steps=12, batch_size=20)
    torch.manual_seed(init_seed)
    g, d = acgan.build(acgan.model_args(3, 1, 8, model))
    torch.manual_seed(1)  # dropout draws from the global generator
    history = acgan.train(
        g,
        d,
        data.float_images(),
        data.labels,
        cfg,
        torch.Generator().manual_seed(2),
        on_epoch=on_epoch,
        snapshots=snapshots,
    )
    return g, d, history


def test_acgan_resume_equals_uninterrupted(tiny_data, tmp_path):
    g_ref, d_ref, h_ref = run_acgan(tiny_data)
    snaps = Snapshots(tmp_path / "acgan.pt", "fp", every=1, where="acgan")
    with pytest.raises(Interrupt):
        run_acgan(tiny_data, snaps, on_epoch=crash_after(2))
    assert snaps.path.is_file()
    # restart: other init and global RNG; the snapshot must override both
    g, d, history = run_acgan(tiny_data, snaps, init_seed=7)
    assert same_weights(g, g_ref) and same_weights(d, d_ref)
    assert history == h_ref and not snaps.path.exists()


def run_decoder(snapshots=None, on_epoch=None, init_seed=0):
    gen = torch.Generator().manual_seed(0)
    z, x = torch.randn(60, 8, generator=gen), torch.rand(60, 1, 8, 8, generator=gen) * 2 - 1
    torch.manual_seed(init_seed)
    dec = regene.Decoder(8, 1, 8, width=4)
    cfg = regene.DecoderConfig(width=4, steps=12, batch_size=16, lr=0.002)
    history = regene.train_decoder(
        dec, z, x, cfg, torch.Generator().manual_seed(3), on_epoch=on_epoch, snapshots=snapshots
    )
    return dec, history


def test_regene_decoder_resume_equals_uninterrupted(tmp_path):
    ref, h_ref = run_decoder()
    snaps = Snapshots(tmp_path / "regene.pt", "fp", every=1, where="regene")
    with pytest.raises(Interrupt):
        run_decoder(snaps, on_epoch=crash_after(3))
    dec, history = run_decoder(snaps, init_seed=5)
    assert same_weights(dec, ref) and history == h_ref and not snaps.path.exists()


def test_snapshot_of_other_parameters_is_not_used(tmp_path):
    _, h_ref = run_decoder()
    snaps = Snapshots(tmp_path / "regene.pt", "old-params", every=1, where="regene")
    with pytest.raises(Interrupt):
        run_decoder(snaps, on_epoch=crash_after(2))
    fresh = Snapshots(snaps.path, "new-params", every=1, where="regene")
    _, history = run_decoder(fresh)
    assert history == h_ref  # started over, not resumed from the other run
