"""What the notebooks (the chapters) share: their summary, and where each claim is tested.

Every chapter opens with three lines (what the paper claims, what we found, at which scale) and ends with a
pointer to where its claims are tested: notebook 06's pre-registered primary study (``results/06_primary.csv``)
and the README's claims ledger. :func:`claim_status` writes one claim of that study in the ledger's words
(:mod:`unet_repro.study.ledger`), from the table, never typed; :func:`read_primary` finds the committed table in a
checkout. Imports no torch.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..results import repo_root
from .ledger import METRIC_LABELS, status_of

__all__ = ["PRIMARY", "read_primary", "claim_status", "claims_markdown", "summary_markdown"]

#: Notebook 06's primary study, relative to the checkout (the committed table the README's ledger is made from).
PRIMARY = Path("results") / "06_primary.csv"


def read_primary(root: str | Path | None = None) -> pd.DataFrame | None:
    """The committed primary-study table of the checkout at ``root`` (default: the one this runs in).

    Returns:
        The table, or None where there is none (outside a checkout, e.g. on Colab, which installs the package
        only).
    """
    root = Path(root) if root is not None else repo_root()
    path = None if root is None else root / PRIMARY
    return pd.read_csv(path) if path is not None and path.is_file() else None


def claim_status(primary: pd.DataFrame | None, claim: str) -> str:
    """One claim of notebook 06's primary study in a sentence: what was changed, its status and its effect.

    Args:
        primary: :func:`read_primary`'s table, or None (then the sentence says where to look).
        claim: the claim's name (the ``claim`` column, e.g. ``"no_elastic"``).

    Returns:
        Markdown, e.g. "`no_elastic`: augmentation without elastic deformation, expected to hurt; **pending
        (3 of 10 seed pairs)**, V_rand -0.003 [-0.014, +0.009] over 3 seed pairs".
    """
    if primary is None:
        return f"`{claim}`: see notebook 06 (`{PRIMARY.as_posix()}` is in a checkout of the repository)"
    rows = primary[primary["claim"] == claim]
    if rows.empty:
        raise ValueError(f"no claim {claim!r} in the primary study; its claims: {', '.join(primary['claim'])}")
    r = rows.iloc[0]
    metric = METRIC_LABELS.get(r["metric"], r["metric"])
    return (
        f"`{claim}`: {r['change']}, expected to {r['expect'].removesuffix('s')}; **{status_of(r)}**, {metric} "
        f"{r['mean_diff']:+.3f} [{r['ci_low']:+.3f}, {r['ci_high']:+.3f}] over {r['n_pairs']} seed pairs"
    )


def claims_markdown(primary: pd.DataFrame | None, claims: list[str]) -> str:
    """A chapter's pointer to notebook 06: the scale of its primary study, then one line per claim.

    Args:
        primary: :func:`read_primary`'s table, or None.
        claims: the claims' names, in the order to list them.

    Returns:
        Markdown: a sentence and a bulleted list of :func:`claim_status` lines.
    """
    scale = "" if primary is None else f" ({primary['scale'].iloc[0]}; the change minus the baseline, 95% interval)"
    lines = [f"- {claim_status(primary, c)}" for c in claims]
    return f"Where notebook 06's primary study stands{scale}:\n\n" + "\n".join(lines)


def summary_markdown(claims: str, found: str, scale: str) -> str:
    """A chapter's summary, three lines of Markdown: what the paper claims, what we found, at which scale."""
    return f"**The paper claims** {claims}  \n**We found** {found}  \n**Scale:** {scale}"
