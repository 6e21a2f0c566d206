"""unet-repro: a reproducible replication of U-Net (Ronneberger, Fischer, Brox, MICCAI 2015).

One module per concept of the paper:

- ``model``, ``sizing``: the architecture of Fig. 1 and its tile arithmetic (section 2);
- ``weights``, ``loss``: border weight maps (eq. 2) and the weighted cross-entropy (eq. 1);
- ``augment``: elastic deformation and the other augmentations of section 3.1;
- ``data``: the ISBI 2012 EM stack (download, checksums, the held-out split);
- ``config``, ``train``, ``checkpoint``: the training recipe and its profiles, the loop (section 3), and
  the files of a run (model, checkpoint with exact resume, log);
- ``inference``: overlap-tile prediction (Fig. 2) and test-time augmentation;
- ``metrics``: the ISBI 2012 challenge metrics (warping, Rand, pixel error; no torch);
- ``results``, ``reproduce``: the results tables and the papermill run that checks them;
- ``sweep``, ``study``, ``ablations``: the study of notebook 06 (runs, their records, exploratory intervals);
  ``primary``, ``ledger``: its pre-registered claims, the rule that decides them, and the claims ledger.

Submodules are imported on use, so ``import unet_repro.metrics`` does not pull in torch.
"""

__version__ = "0.1.0"
