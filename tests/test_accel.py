"""The GPU path's options (pipeline.accel): off, a training loop is untouched; bf16 autocast,
channels-last and torch.compile each train to the same accuracy on the tiny data (on the CPU
here; the `gpu` test runs them on CUDA where there is one)."""

from __future__ import annotations

import pytest
import torch
from support import fresh, tiny_train

from pipeline.accel import OFF, Accel, autocast, training_net
from pipeline.config import load_sections
from pipeline.errors import ConfigError
from pipeline.runtime import RuntimeConfig
from pipeline.train import evaluate_classifier, train_classifier

CPU = torch.device("cpu")


def trained(tiny_data, accel=OFF, device=CPU, dtypes: set | None = None):
    """A small CNN trained 8 passes; `dtypes` collects the dtypes its head computed in."""
    model = fresh()
    if dtypes is not None:
        model.head.register_forward_hook(lambda m, i, out: dtypes.add(out.dtype))
    cfg = tiny_train(steps=24, lr_schedule="cosine")
    train_classifier(model, tiny_data, cfg, device=device, seed=1, where="t", accel=accel)
    return model, evaluate_classifier(model, tiny_data)["accuracy"]


def test_off_the_training_net_is_the_model_and_nothing_autocasts(tiny_data):
    model = fresh()
    assert training_net(model, OFF) is model
    with autocast(CPU, OFF):
        assert not torch.is_autocast_enabled("cpu")
    assert model.block2[0].weight.is_contiguous()


def test_bf16_autocast_runs_the_forward_in_bf16_and_trains_as_well(tiny_data):
    _, fp32 = trained(tiny_data)
    dtypes: set = set()
    model, bf16 = trained(tiny_data, Accel("bf16", False, False), dtypes=dtypes)
    assert torch.bfloat16 in dtypes  # the training loop's forward passes ran in bf16
    assert all(p.dtype == torch.float32 for p in model.parameters())  # master weights stay fp32
    assert fp32 > 0.9 and bf16 > 0.9, (fp32, bf16)


def test_channels_last_puts_the_weights_in_nhwc_and_trains_as_well(tiny_data):
    model, acc = trained(tiny_data, Accel("fp32", True, False))
    conv = model.block2[0].weight
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    assert acc > 0.9


@pytest.mark.slow
def test_compiled_training_trains_as_well_and_keeps_the_models_state(tiny_data):
    compiled = Accel("fp32", False, True)
    model = fresh()
    assert training_net(model, compiled) is not model
    assert training_net(model, compiled, compile_ok=False) is model
    torch._dynamo.reset()
    model, acc = trained(tiny_data, compiled)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] > 0  # the loop ran compiled
    assert acc > 0.9
    assert not any(k.startswith("_orig_mod") for k in model.state_dict())  # checkpoints unchanged


@pytest.mark.gpu
def test_the_whole_gpu_path_trains_on_cuda(tiny_data):
    _, acc = trained(tiny_data, Accel("bf16", True, True), torch.device("cuda"))
    assert acc > 0.9


def test_runtime_options_are_checked(tmp_path, real_params):
    real_params["runtime"]["precision"] = "fp16"
    path = tmp_path / "p.yaml"
    import yaml

    path.write_text(yaml.safe_dump(real_params))
    with pytest.raises(ConfigError, match="precision"):
        load_sections(path, {"runtime": RuntimeConfig})
