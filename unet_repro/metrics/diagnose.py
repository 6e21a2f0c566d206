""" "My prediction is blank": the most common complaint about U-Net, diagnosed where it appears.

``predict`` and ``evaluate`` call :func:`blank_warning` on the probability map they write or score and print
one warning line when it is nearly constant or thresholding it gives (almost) one class (``evaluate`` also
warns when a map looks inverted against its labels: :func:`unet_repro.metrics.validate_inputs`). The warning
names the likely causes:
label polarity (this project's convention, the challenge's, is membrane = 0 and cell = 1, and the map is the
probability of *cell*), a model trained on another modality, an input whose grey values the model never saw
(it was trained on 8-bit images scaled from 0..255), or too few training steps. Imports no torch.
"""

from __future__ import annotations

import numpy as np

__all__ = ["blank_warning", "CAUSES"]

#: The likely causes of a blank or inverted map, as the warnings list them.
CAUSES = (
    "label polarity (labels must mark membrane 0 and cell 1; the map is P(cell))",
    "a model trained on another modality",
    "grey values the model never saw (it was trained on 8-bit images spanning 0..255)",
    "too few training steps",
)


def blank_warning(prob: np.ndarray, image: np.ndarray | None = None, threshold: float = 0.5) -> str | None:
    """A warning line when ``prob`` is nearly blank, else None.

    Args:
        prob: probability of cell in [0, 1], any shape.
        image: the input it was predicted from (its grey-value range is quoted), if at hand.
        threshold: where the map is cut into cell and membrane.

    Returns:
        ``warning: ...`` naming what is blank and the likely causes, or None for a map with both classes.
    """
    prob = np.asarray(prob, dtype=np.float32)
    spread = float(prob.max() - prob.min()) if prob.size else 0.0
    cell = float((prob > threshold).mean()) if prob.size else 0.0
    if spread >= 0.05 and 0.005 <= cell <= 0.995:
        return None
    what = (
        f"P(cell) spans only {spread:.3f}"
        if spread < 0.05
        else f"{cell:.1%} of the pixels are cell at threshold {threshold:g}"
    )
    if image is not None and np.size(image):
        what += f"; the input's grey values span {np.min(image)}..{np.max(image)}"
    return f"warning: the prediction is nearly blank ({what}); likely causes: {'; '.join(CAUSES)}"
