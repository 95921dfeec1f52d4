"""ReGene: the label guarantee of convex combinations, the decoder, sampling determinism."""

from __future__ import annotations

import pytest
import torch

from pipeline.errors import DataError
from pipeline.methods import regene


def _latent_setup(seed=0, n=400, d=8, k=4):
    """Random latents and a random linear head; labels = the head's predictions, except a few
    deliberately wrong labels that combine_latents must leave out."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    head = torch.nn.Linear(d, k)
    z = torch.randn(n, d, generator=gen) * 3
    with torch.no_grad():
        predicted = head(z).argmax(1)
    labels = predicted.clone()
    labels[:40] = (labels[:40] + 1) % k  # misclassified images: not in any pool
    return head, z, predicted, labels, k


@pytest.mark.parametrize("k_mix,alpha", [(2, 1.0), (5, 0.3), (3, 10.0)])
def test_label_guarantee_is_100_percent(k_mix, alpha):
    head, z, predicted, labels, k = _latent_setup()
    cfg = regene.CombineConfig(k=k_mix, dirichlet_alpha=alpha, per_class=100, pool="correct")
    combined, classes = regene.combine_latents(
        z, predicted, labels, k, cfg, torch.Generator().manual_seed(1)
    )
    assert combined.shape == (k * 100, 8)
    assert regene.label_kept(head, combined, classes, k) == 1.0


def test_guarantee_needs_correctly_classified_latents():
    """Control: pools with misclassified latents lose the guarantee (the test can fail)."""
    head, z, predicted, labels, k = _latent_setup()
    cfg = regene.CombineConfig(k=2, dirichlet_alpha=1.0, per_class=200, pool="correct")
    # pretend every image is correctly classified (predicted = its label, right or wrong)
    combined, classes = regene.combine_latents(
        z, labels, labels, k, cfg, torch.Generator().manual_seed(1)
    )
    assert regene.label_kept(head, combined, classes, k) < 1.0


def test_guarantee_ignores_the_extra_fake_output():
    head, z, predicted, labels, k = _latent_setup()
    big = torch.nn.Linear(8, k + 1)  # a STIC round: K real outputs + "fake"
    with torch.no_grad():
        big.weight[:k], big.bias[:k] = head.weight, head.bias
        big.weight[k], big.bias[k] = 0.0, 1e6  # the fake logit wins everywhere
    cfg = regene.CombineConfig(k=3, dirichlet_alpha=1.0, per_class=50, pool="correct")
    combined, classes = regene.combine_latents(
        z, predicted, labels, k, cfg, torch.Generator().manual_seed(2)
    )
    assert regene.label_kept(big, combined, classes, k) == 1.0


def test_same_seed_same_combinations():
    head, z, predicted, labels, k = _latent_setup()
    cfg = regene.CombineConfig(k=3, dirichlet_alpha=1.0, per_class=10, pool="correct")
    a = regene.combine_latents(z, predicted, labels, k, cfg, torch.Generator().manual_seed(5))[0]
    b = regene.combine_latents(z, predicted, labels, k, cfg, torch.Generator().manual_seed(5))[0]
    c = regene.combine_latents(z, predicted, labels, k, cfg, torch.Generator().manual_seed(6))[0]
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_too_few_correct_images_is_an_error():
    head, z, predicted, labels, k = _latent_setup(n=6)
    cfg = regene.CombineConfig(k=5, dirichlet_alpha=1.0, per_class=2, pool="correct")
    with pytest.raises(
        DataError, match="regene.combine.k is 5 but class .* lower regene.combine.k"
    ):
        regene.combine_latents(z, predicted, labels, k, cfg, torch.Generator())


def test_labelled_pool_combines_a_class_the_classifier_never_gets_right():
    head, z, predicted, labels, k = _latent_setup()
    predicted = torch.where(labels == 0, torch.ones_like(predicted), predicted)  # class 0 all wrong
    correct = regene.CombineConfig(k=2, dirichlet_alpha=1.0, per_class=4, pool="correct")
    with pytest.raises(DataError, match="class 0 has only 0 correctly classified"):
        regene.combine_latents(z, predicted, labels, k, correct, torch.Generator())
    labelled = regene.CombineConfig(k=2, dirichlet_alpha=1.0, per_class=4, pool="labelled")
    combined, classes = regene.combine_latents(z, predicted, labels, k, labelled, torch.Generator())
    assert combined.shape[0] == 4 * k and torch.equal(classes[:4], torch.zeros(4, dtype=torch.long))


@pytest.mark.parametrize("size", [8, 16, 32])
def test_decoder_shapes_and_range(size):
    dec = regene.Decoder(latent_dim=8, channels=3, image_size=size, width=4)
    x = dec(torch.randn(5, 8) * 10)
    assert x.shape == (5, 3, size, size) and x.min() >= -1 and x.max() <= 1


def test_decoder_learns_to_reconstruct(tiny_data):
    x = tiny_data.float_images()
    # an informative latent: a fixed random projection of the pixels
    z = x.flatten(1) @ torch.randn(64, 16, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    dec = regene.Decoder(z.shape[1], 1, 8, width=8)
    before = regene.reconstruction_error(dec, z, x)
    cfg = regene.DecoderConfig(steps=45, batch_size=20, width=8, lr=0.01)
    history = regene.train_decoder(dec, z, x, cfg, torch.Generator().manual_seed(0))
    after = regene.reconstruction_error(dec, z, x)
    assert len(history) == 15 and after < 0.5 * before
    samples = regene.decode(dec, z[:7])
    assert samples.shape == (7, 1, 8, 8)
