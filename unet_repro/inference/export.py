"""A trained model as a BioImage Model Zoo package (bioimage.io spec 0.5): napari, ilastik, deepImageJ, QuPath.

``unet-repro export --model MODEL.pt --format bioimageio OUT [--image TIFF] [--slice N]`` writes the folder
``OUT``: ``rdf.yaml``, TorchScript weights, ``pytorch_state_dict`` weights (architecture:
:class:`CellProbability`, the package's ``unet_repro.model.unet.UNet`` built from its ``UNetConfig`` fields),
a test input (a crop of ``--image``; default a slice of the ISBI 2012 training stack) with its expected
output, a cover image and a model card. The package is validated with ``bioimageio.spec`` and tested with
``bioimageio.core.test_model`` before the command returns (``pip install "unet-repro[export]"``).

What the description tells a consumer, so that it does what ``predict`` does:

- **Grey values.** ``scale_linear`` by 1/255 (``data.isbi2012.normalize_image``); a model trained on a user's
  16-bit or float stack maps ``data.input_range`` ``lo..hi`` to 0..1 (``scale_linear``, then ``clip``).
- **Size.** The network of Fig. 1 has unpadded convolutions: the input side is ``min + n * 2**depth``
  (188 + 16n for the paper's depth 4; 44 + 4n for depth 2) and the output is smaller by a fixed amount
  (``SizeReference`` offset: -184 for depth 4), the halo already cropped by the network.
- **Output.** One channel, P(cell) = softmax channel 1 of the logits, computed inside both weight formats
  (what ``predict`` writes: 1 = cell, 0 = membrane).

The expected output is our own overlap-tile prediction (``predict_proba`` of the whole image, Fig. 2) at the window
the network sees in one pass over the test crop, which starts on our tiles' 2x2 max-pooling grid (``-border`` modulo
``2**depth``). Measured with bioimageio.core on the ci profile's model (1,000 iterations), ISBI 2012 training slice 0,
crop 252 -> 68, CPU: max |zoo - ours| = 7.2e-7 (TorchScript and state dict alike). Consumers that tile differently
differ more: a window shifted by 8 pixels, off the pooling grid, changes P(cell) by up to 0.009 (mean 0.00075); a
consumer that does not mirror has no prediction for the 92 pixels at each image edge. Each package's model card
gives these numbers for its model. A 16-bit model's network rounds its scaled input to 8 bits, as ``predict`` does.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..model.sizing import UNetConfig, output_size, valid_input_sizes
from ..model.unet import UNet

__all__ = ["FORMATS", "CellProbability", "export_bioimageio", "main"]

FORMATS = ("bioimageio",)
EXTRA = 'pip install "unet-repro[export]"'
PAPER = (
    "Ronneberger, O., Fischer, P., Brox, T.: U-Net: Convolutional Networks for Biomedical Image Segmentation. "
    "MICCAI 2015, LNCS 9351, pp. 234-241"
)


class CellProbability(nn.Module):
    """``UNet(**config)`` followed by softmax over the classes, channel 1 kept: P(cell), ``N x 1 x h x w``.

    The forward pass is the one of :class:`unet_repro.model.unet.UNet` without its Python input checks, so that
    ``torch.jit.script`` compiles it for any valid size. The parameters keep ``UNet``'s names: its
    ``state_dict`` loads as it is.

    Args:
        quantize: round the input (0..1) to 8 bits first, as ``predict`` rounds a 16-bit stack
            (``data.user.to_uint8``) for a model trained on one; the zoo's ``scale_linear`` does not round.
        **config: the fields of :class:`unet_repro.model.sizing.UNetConfig` (``model_config`` in ``model.pt``).
    """

    def __init__(self, quantize: bool = False, **config: Any) -> None:
        super().__init__()
        self.quantize = quantize
        unet = UNet(UNetConfig(**config))
        self.down, self.pool, self.bottom, self.dropout = unet.down, unet.pool, unet.bottom, unet.dropout
        self.up, self.dec, self.head = unet.up, unet.dec, unet.head

    def forward(self, x: Tensor) -> Tensor:
        if self.quantize:
            x = torch.round(x * 255.0) / 255.0
        skips: list[Tensor] = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = self.pool(x)
        x = self.dropout(self.bottom(x))
        i = len(skips)
        for up, block in zip(self.up, self.dec):  # noqa: B905 - TorchScript's zip takes no strict=
            x = up(x)
            i -= 1
            skip = skips[i]
            top, left = (skip.shape[-2] - x.shape[-2]) // 2, (skip.shape[-1] - x.shape[-1]) // 2
            skip = skip[:, :, top : top + x.shape[-2], left : left + x.shape[-1]]
            x = block(torch.cat([skip, x], dim=1))
        return torch.softmax(self.head(x), dim=1)[:, 1:2]


def _geometry(config: UNetConfig, side: int) -> tuple[int, int, int, int]:
    """``(min, step, shrink, size)``: valid sides ``min + n*step``, output = input - shrink, and the test crop's side
    (the smallest valid side whose output is at least 64 pixels and that fits an image of ``side``)."""
    step = 2**config.depth
    sizes = valid_input_sizes(1, 4 * step + 512, config.depth, config.padding)
    lo = sizes[0]
    shrink = lo - output_size(lo, config.depth, config.padding)
    size = next((s for s in sizes if s - shrink >= 64), sizes[-1])
    if size > side:
        fits = [s for s in sizes if s <= side]
        if not fits:
            raise ValueError(
                f"the image is {side} pixels wide, less than the model's smallest input {lo}; give a larger --image"
            )
        size = fits[-1]
    return lo, step, shrink, size


def _origin(length: int, size: int, step: int, border: int) -> int:
    """Start of the test crop near the image centre, on our tiles' pooling grid (``-border`` modulo ``step``)."""
    start = (length - size) // 2
    start -= (start + border) % step
    if start < 0:
        start += step
    if start + size > length:
        raise ValueError(
            f"a crop of {size} on our pooling grid does not fit an image of {length}; give a larger --image"
        )
    return start


def _card(meta: dict[str, Any], measured: dict[str, float], shapes: dict[str, Any]) -> str:
    """The model card (``README.md``): what the model is, its training, its use, the measured agreement."""
    data = meta.get("data", {})
    trained_on = (
        f"a user's stack ({json.dumps(data)[:300]})"
        if data
        else "the ISBI 2012 EM segmentation challenge training stack (30 slices of 512 x 512, ssTEM of the Drosophila "
        "first instar larva ventral nerve cord), labels 1 = cell, 0 = membrane"
    )
    train = meta.get("train_config", {})
    rows = "\n".join(f"| {k} | {v} |" for k, v in sorted(train.items()) if not isinstance(v, (dict, list)))
    halo, step = shapes["shrink"] // 2, shapes["step"]
    return f"""# U-Net (unet-repro): P(cell) of an EM image

A U-Net (Ronneberger, Fischer, Brox, MICCAI 2015; arXiv 1505.04597) trained and exported by unet-repro, a
reproducible replication of the paper. Network: {shapes["config"]}.

## What it is for

Segmenting neuronal membranes in electron-microscopy images like its training data: the output is P(cell) per
pixel (1 = cell, 0 = membrane), the ISBI 2012 submission format. Not for other modalities, stains or scales than
the training data without checking; not a clinical tool.

## Training

Trained on {trained_on}.

| setting | value |
|---|---|
{rows}

## Input and output

- Input: one grey channel, {shapes["dtype"]}; preprocessing {shapes["scaling"]}.
- Size: side = {shapes["min"]} + {step} n (valid convolutions, section 2 of the paper).
- Output: side = input side - {shapes["shrink"]}: the network sees {halo} pixels of context on each side. To
  predict pixels at the image border, extend the image by mirroring, as the paper does (Fig. 2).

## Validation

The test output is unet-repro's own overlap-tile prediction (`predict`) of the whole image, at the window the
network sees in one pass over the test input ({shapes["crop"]}). Measured at export with bioimageio.core:

- on the test input: max |zoo package - unet-repro| = {measured["torchscript"]:.2g} (TorchScript),
  {measured["pytorch_state_dict"]:.2g} (state dict){shapes["rounding"]};
- tiles off unet-repro's 2x2 max-pooling grid (shifted by {step // 2} pixels) change P(cell) by up to
  {measured["shifted"]:.2g} (mean {measured["shifted_mean"]:.2g}): the network is equivariant only to shifts by
  {step} pixels, so consumers that tile differently get slightly different maps;
- a consumer that does not mirror the image gets no prediction for the {halo} pixels at the image edges.

## License and citation

MIT. Authors: the unet-repro authors. Cite: {PAPER}, doi:10.1007/978-3-319-24574-4_28.
"""


def _cover(image: np.ndarray, prob: np.ndarray, path: Path) -> None:
    """Input crop (left) and P(cell) (right, centred on the window it covers), 2:1 PNG."""
    from PIL import Image

    right = np.zeros_like(image, dtype=np.uint8)
    pad = (image.shape[0] - prob.shape[0]) // 2
    right[pad : pad + prob.shape[0], pad : pad + prob.shape[1]] = np.rint(prob * 255).astype(np.uint8)
    Image.fromarray(np.concatenate([image, right], axis=1)).save(path)


def export_bioimageio(
    model_path: str | Path, out: str | Path, image: np.ndarray | None = None, test: bool = True
) -> dict[str, float]:
    """Write the bioimage.io package of ``model_path`` into the new folder ``out``, validate and test it.

    Args:
        model_path: a ``model.pt`` written by ``python -m unet_repro.train``.
        out: a folder that does not exist or is empty.
        image: a 2D image the model was made for (its grey values as ``predict`` reads them); None: slice 0 of
            the ISBI 2012 training stack.
        test: run ``bioimageio.core.test_model`` on the written package.

    Returns:
        max |difference| between bioimageio.core's prediction of the package's test input and ``predict_proba``
        (``torchscript``, ``pytorch_state_dict``), and of a crop off our pooling grid (``shifted``,
        ``shifted_mean``).

    Raises:
        ValueError: (one line) on bad input or a package that fails validation or its test.
    """
    from ..data.user import to_uint8
    from ..model.files import load_model, read_dict
    from ..model.sizing import border as context
    from .tiling import predict_proba

    try:
        import bioimageio.core as core
        import bioimageio.spec as spec
        from bioimageio.spec.model import v0_5 as zoo
    except ImportError as exc:
        raise ImportError(f"the export extra is not installed (no {exc.name}); {EXTRA}") from None
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"{out} exists and is not an empty folder; give a new folder for the package")
    model = load_model(model_path)
    meta, config = read_dict(Path(model_path), "model"), model.config
    if image is None:
        from ..data.isbi2012 import load_isbi2012

        image = load_isbi2012().train_images[0]
    image = np.asarray(image)
    if image.ndim != 2:
        raise ValueError(f"the image has shape {image.shape}; give one 2D image (--slice picks one of a stack)")
    lo, step, shrink, size = _geometry(config, min(image.shape))
    halo, valid = shrink // 2, config.padding == "valid"
    ys, xs = (_origin(n, size, step, context(size, config.depth) if valid else 0) for n in image.shape)
    rng = meta.get("data", {}).get("input_range")
    grey = image if rng is None else to_uint8(image, (rng[0], rng[1]))
    if grey.dtype != np.uint8:
        raise ValueError(f"the image holds {grey.dtype}; the model was trained on 8-bit grey values: give uint8")
    tile = valid_input_sizes(572, 572 + 4 * step, config.depth, config.padding)[0]
    raw = image[ys : ys + size, xs : xs + size]
    ours = predict_proba(model, grey, tile=tile)  # Fig. 2 on the whole image, fp32
    window = (slice(ys + halo, ys + size - halo), slice(xs + halo, xs + size - halo))
    # valid padding: the crop's output window of the whole image's prediction; same padding: the network sees
    # nothing beyond its input, so the crop's own one-pass prediction (the whole image's differs near its edges)
    expected = ours[window] if valid else predict_proba(model, grey[ys : ys + size, xs : xs + size], tile=tile)

    gain, offset = (1 / 255, 0.0) if rng is None else (1 / (rng[1] - rng[0]), -rng[0] / (rng[1] - rng[0]))
    to_float = zoo.EnsureDtypeDescr(kwargs=zoo.EnsureDtypeKwargs(dtype="float32"))
    scale = zoo.ScaleLinearDescr(kwargs=zoo.ScaleLinearKwargs(gain=float(gain), offset=float(offset)))
    clip = [] if rng is None else [zoo.ClipDescr(kwargs=zoo.ClipKwargs(min=0.0, max=1.0))]
    preprocessing = [to_float, scale, *clip, to_float]  # the closing one: else the spec appends the input's dtype
    shapes = dict(
        config=", ".join(f"{k}={v}" for k, v in dataclasses.asdict(config).items()),
        dtype=raw.dtype.name,
        scaling="x/255" if rng is None else f"(x - {rng[0]}) / ({rng[1]} - {rng[0]}), clipped to 0..1",
        min=lo,
        step=step,
        shrink=shrink,
        crop=f"{size} x {size} at y={ys}, x={xs} of the image -> {size - shrink} x {size - shrink}",
        rounding="" if rng is None else "; both round the scaled grey values to 8 bits, as `predict` does",
    )
    data_range = (0.0, 255.0) if rng is None else (float(rng[0]), float(rng[1]))
    work = Path(tempfile.mkdtemp(prefix="unet-repro-export-"))
    try:
        import tifffile

        net = CellProbability(quantize=rng is not None, **dataclasses.asdict(config)).eval()
        net.load_state_dict(model.state_dict())
        torch.save(model.state_dict(), work / "weights.pt")
        torch.jit.script(net).save(str(work / "weights_torchscript.pt"))
        np.save(work / "test_input.npy", raw[None, None])
        np.save(work / "test_output.npy", expected[None, None].astype(np.float32))
        tifffile.imwrite(work / "sample_input.tif", raw)
        tifffile.imwrite(work / "sample_output.tif", expected.astype(np.float32))
        _cover(grey[ys : ys + size, xs : xs + size], expected, work / "cover.png")
        (work / "environment.yaml").write_text(
            "name: unet-repro\nchannels: [conda-forge]\n"
            f"dependencies: [python>=3.10, pytorch>={torch.__version__.split('+')[0]}, pip, {{pip: [unet-repro]}}]\n"
        )
        (work / "README.md").write_text("# draft\n")  # the card needs the measurements, which need a description
        describe = functools.partial(
            _describe, zoo, work, config, raw.dtype.name, data_range, preprocessing, (lo, step, shrink), rng is not None
        )
        measured = _measure(core, describe(), expected)
        shift = step // 2
        moved = grey[ys + shift : ys + shift + size, xs + shift : xs + shift + size].astype(np.float32) / 255
        with torch.no_grad():
            off = (
                net(torch.from_numpy(moved)[None, None]).numpy()[0, 0]
                - ours[tuple(slice(w.start + shift, w.stop + shift) for w in window)]
            )
        measured |= {"shifted": float(np.abs(off).max()), "shifted_mean": float(np.abs(off).mean())}
        (work / "README.md").write_text(_card(meta, measured, shapes))
        descr = describe()
        if descr.validation_summary.status == "failed":
            raise ValueError(f"bioimageio.spec rejects the package: {descr.validation_summary.format()[:800]}")
        out.mkdir(parents=True, exist_ok=True)
        spec.save_bioimageio_package_as_folder(descr, output_path=out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if test:
        result = core.test_model(out / "rdf.yaml", devices=["cpu"])
        if result.status != "passed":
            raise ValueError(f"bioimageio.core's model test failed on {out}: {result.format()[:1500]}")
    return measured


def _measure(core: Any, descr: Any, expected: np.ndarray) -> dict[str, float]:
    """max |bioimageio.core's prediction of the test input - ``expected``| for each weight format."""
    from bioimageio.core.digest_spec import get_test_input_sample

    measured = {}
    for weights in ("torchscript", "pytorch_state_dict"):
        pipeline = core.create_prediction_pipeline(descr, weight_format=weights, devices=["cpu"])
        try:
            sample = pipeline.predict_sample_without_blocking(get_test_input_sample(descr))
        finally:
            pipeline.unload()
        measured[weights] = float(np.abs(sample.members["prob"].data.values[0, 0] - expected).max())
    return measured


def _describe(
    zoo: Any,
    work: Path,
    config: UNetConfig,
    dtype: str,
    data_range: tuple[float, float],
    preprocessing: list[Any],
    sizes: tuple[int, int, int],
    quantize: bool,
) -> Any:
    """The ``ModelDescr`` (spec 0.5) of the files in ``work``."""
    from importlib.metadata import PackageNotFoundError, metadata

    from ..cli import version

    lo, step, shrink = sizes
    space_in = [zoo.SpaceInputAxis(id=zoo.AxisId(a), size=zoo.ParameterizedSize(min=lo, step=step)) for a in "yx"]
    ref = [zoo.SizeReference(tensor_id=zoo.TensorId("raw"), axis_id=zoo.AxisId(a), offset=-shrink) for a in "yx"]
    space_out = [zoo.SpaceOutputAxis(id=zoo.AxisId(a), size=r) for a, r in zip("yx", ref, strict=True)]
    torch_version = zoo.Version(torch.__version__.split("+")[0])
    try:
        urls = dict(u.split(", ", 1) for u in metadata("unet-repro").get_all("Project-URL") or [])
    except PackageNotFoundError:  # pragma: no cover - a source tree without install
        urls = {}
    file = lambda name: zoo.FileDescr(source=work / name)  # noqa: E731
    return zoo.ModelDescr(
        name="U-Net unet-repro P-cell",
        description="U-Net (Ronneberger et al. 2015) replicated by unet-repro: P(cell) of an EM image, 1 = cell",
        authors=[zoo.Author(name="the unet-repro authors")],
        cite=[
            zoo.CiteEntry(text=PAPER, doi=zoo.Doi("10.1007/978-3-319-24574-4_28")),
            zoo.CiteEntry(text="arXiv:1505.04597", url=zoo.HttpUrl("https://arxiv.org/abs/1505.04597")),
        ],
        license=zoo.LicenseId("MIT"),
        documentation=file("README.md"),
        covers=[file("cover.png")],
        tags=["unet", "segmentation", "electron-microscopy", "membrane", "2d", "pytorch", "isbi2012"],
        git_repo=zoo.HttpUrl(urls["Repository"]) if "Repository" in urls else None,
        version=version(),
        inputs=[
            zoo.InputTensorDescr(
                id=zoo.TensorId("raw"),
                description="grey values",
                axes=[zoo.BatchAxis(), zoo.ChannelAxis(channel_names=[zoo.Identifier("grey")]), *space_in],
                test_tensor=file("test_input.npy"),
                sample_tensor=file("sample_input.tif"),
                data=zoo.IntervalOrRatioDataDescr(type=dtype, range=data_range),
                preprocessing=preprocessing,
            )
        ],
        outputs=[
            zoo.OutputTensorDescr(
                id=zoo.TensorId("prob"),
                description="P(cell): softmax channel 1 of the two classes (membrane, cell)",
                axes=[zoo.BatchAxis(), zoo.ChannelAxis(channel_names=[zoo.Identifier("cell")]), *space_out],
                test_tensor=file("test_output.npy"),
                sample_tensor=file("sample_output.tif"),
                data=zoo.IntervalOrRatioDataDescr(type="float32", range=(0.0, 1.0)),
            )
        ],
        weights=zoo.WeightsDescr(
            pytorch_state_dict=zoo.PytorchStateDictWeightsDescr(
                source=work / "weights.pt",
                architecture=zoo.ArchitectureFromLibraryDescr(
                    import_from="unet_repro.inference.export",
                    callable=zoo.Identifier("CellProbability"),
                    kwargs={"quantize": quantize, **dataclasses.asdict(config)},
                ),
                pytorch_version=torch_version,
                dependencies=file("environment.yaml"),
            ),
            torchscript=zoo.TorchscriptWeightsDescr(
                source=work / "weights_torchscript.pt", pytorch_version=torch_version, parent="pytorch_state_dict"
            ),
        ),
    )


def main(argv: Sequence[str] | None = None, prog: str = "python -m unet_repro.export") -> int:
    """Entry point of ``python -m unet_repro.export`` (and ``unet-repro export``); 2 on bad input."""
    from ..cli import command_parser, guarded

    p = command_parser(prog, "Write a trained model as a BioImage Model Zoo package (bioimage.io spec 0.5).")
    p.add_argument("--model", required=True, help="model.pt written by python -m unet_repro.train")
    p.add_argument("--format", required=True, choices=FORMATS, help="bioimageio: a bioimage.io model package")
    p.add_argument("--image", help="TIFF image or stack for the test input (default: the ISBI 2012 training stack)")
    p.add_argument("--slice", type=int, default=0, help="slice of --image to use (default 0)")
    p.add_argument("out", help="new (or empty) folder for the package")
    args = p.parse_args(argv)

    def run() -> int:
        model = Path(args.model)
        if not model.is_file():
            raise FileNotFoundError(f"--model {model} does not exist; give a model.pt written by unet-repro train")
        image = None
        if args.image:
            import tifffile

            stack = tifffile.imread(args.image)
            if stack.ndim not in (2, 3) or (stack.ndim == 3 and not -len(stack) <= args.slice < len(stack)):
                raise ValueError(
                    f"--image {args.image} has shape {stack.shape}; give a 2D image or a stack and a --slice in it"
                )
            image = stack if stack.ndim == 2 else stack[args.slice]
        measured = export_bioimageio(model, args.out, image)
        worst = max(measured["torchscript"], measured["pytorch_state_dict"])
        print(f"wrote {args.out}: bioimage.io package, validated and tested; max |zoo - predict| = {worst:.2g}")
        return 0

    return guarded(run)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
