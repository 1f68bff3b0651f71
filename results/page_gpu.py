"""The names of results/gpu.md: the projected bf16 peak memory of the 7–8B presets (width.json)."""

from pagekit import J, f


def gb(model):
    """A model's projected bf16 peak device memory in GB."""
    return f(J("width.json")["projection"][model]["bf16_peak_device"] / 1e9)


def context():
    return dict(gb=gb)
