"""What an edit (a patch or a LoRA adapter, W_T - W_0 of some layers) records of the model it was made
on, and the check that a model is that model, in the state the edit expects: the layers, their shapes
and dtype, a fingerprint of every other parameter, and |W_0|_F, |W_T|_F per layer -- so an edit is
never applied to another model, added twice, or taken back from a model that does not carry it.

    meta = layer_info(model, W0)                         # recorded when the edit is saved
    check_fit(model, path, meta, shape_of, "adapter")    # ModelError (one line) unless it fits
"""

from capture import ModelError
from lab.cache import weights_digest


def fingerprint(model, layers):
    """Digest of every parameter and buffer except the edited layers' weights."""
    skip = {f"{n}.weight" for n in layers}
    return weights_digest(model, exclude=skip)


def layer_info(model, W0):
    """What a patch or an adapter records of the model it was made on, given the unedited weights
    W0 {layer: weight} and the model holding the edited ones: the layers, their shapes and dtype, the
    fingerprint of every other parameter, and |W_0|_F, |W_T|_F per layer (which of the two a model
    holds, check_fit below)."""
    named = dict(model.named_modules())
    return {
        "layers": list(W0),
        "fingerprint": fingerprint(model, W0),
        "shapes": {n: list(W.shape) for n, W in W0.items()},
        "dtype": str(next(iter(W0.values())).dtype),
        "norms": {
            n: [W.double().norm().item(), named[n].weight.detach().double().norm().item()]
            for n, W in W0.items()
        },
    }


def check_fit(model, path, meta, shape_of, what="patch", revert=False):
    """ModelError (one line) unless every layer meta names is a layer of this model whose weight has
    the shape shape_of(layer, module) and meta's dtype, the parameters it does not edit are those of
    the model it was made on (meta's fingerprint), and each layer holds the weights the edit expects:
    the unedited ones, or the edited ones with revert (meta's |W_0|_F, |W_T|_F) -- an edit is never
    added twice, nor taken back from a model that does not carry it. Patches and adapters alike."""
    named = dict(model.named_modules())
    for n in meta["layers"]:
        if n not in named or not hasattr(named[n], "weight"):
            raise ModelError(f"{path}: the {what} edits {n!r}, which this model does not have")
        W, want = named[n].weight, list(shape_of(n, named[n]))
        if list(W.shape) != want:
            raise ModelError(
                f"{path}: the {what}'s {n} has shape {want}, this model's is {list(W.shape)}: made "
                "for another model"
            )
        if str(W.dtype) != meta["dtype"]:
            raise ModelError(
                f"{path}: the {what} was made on {meta['dtype']} weights, this model is {W.dtype}: "
                f"load it with --dtype {meta['dtype'].replace('torch.', '')}"
            )
    if fingerprint(model, meta["layers"]) != meta["fingerprint"]:
        raise ModelError(
            f"{path}: the {what} was made for another model ({meta.get('model', '?')}): the "
            "parameters it does not edit differ"
        )
    want, other = (1, 0) if revert else (0, 1)  # which norm the model must hold now
    for n in meta["layers"]:
        now, norms = named[n].weight.detach().double().norm().item(), meta["norms"][n]
        if abs(now - norms[want]) > 1e-5 * norms[want] or abs(now - norms[want]) > abs(
            now - norms[other]
        ):
            raise ModelError(
                f"{path}: layer {n} does not hold the {'edited' if revert else 'unedited'} weights: "
                f"|W|_F is {now:.10g}, nearer the {'unedited' if revert else 'edited'} "
                f"{norms[other]:.10g} than the expected {norms[want]:.10g}; "
                f"{'revert a patch that was applied' if revert else f'the {what} is applied already'}"
            )
