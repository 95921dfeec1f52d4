"""Generation methods other than STIC, one module each, with their parameters beside the code.

Each module holds a frozen config dataclass, the models/samplers as plain `nn.Module`s or small
functions that take an explicit `torch.Generator`, and never reads params.yaml or paths. Images
are float in [-1, 1] (B, C, H, W) here; `pipeline.data.to_uint8` converts for the sample files.
"""
