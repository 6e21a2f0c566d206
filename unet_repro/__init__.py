"""unet-repro: a reproducible replication of U-Net (Ronneberger, Fischer, Brox, MICCAI 2015).

A folder per chapter of the paper, in its order (each folder's ``__init__`` names what it holds):

- ``model``: the architecture of Fig. 1, its tile arithmetic (section 2) and the model file (01);
- ``loss``: the cells of a label, border weight maps (eq. 2) and the weighted cross-entropy (eq. 1) (02);
- ``augment``: elastic deformation and the other augmentations of section 3.1 (03);
- ``data``: the ISBI 2012 EM stack (download, checksums) and the train / validation / test protocol (04);
- ``training``: the recipe and its profiles, tiles, the step, checkpoints, the loop (04);
- ``inference``: overlap-tile prediction (Fig. 2), test-time augmentation, the predict command (04);
- ``metrics``: the ISBI 2012 challenge metrics (warping, Rand, pixel error; no torch), the evaluate command (05);
- ``study``: notebook 06's runs, their records, the pre-registered claims, their rule and the claims ledger (06).

At the top level: ``cli`` (the ``unet-repro`` command), ``options`` (every option string), ``device``,
``results``, ``reproduce``, ``readme``, and ``train``, ``predict``, ``evaluate``, ``sweep``, which only run their
command for ``python -m unet_repro.<verb>``.
Submodules are imported on use, so ``import unet_repro.metrics`` does not pull in torch.
"""

__version__ = "0.2.0"
