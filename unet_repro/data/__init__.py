"""Chapter 04's data: the ISBI 2012 stack and the protocol that splits it.

``isbi2012``: ``load_isbi2012`` (download, checksums, ``$UNET_REPRO_DATA``), ``normalize_image``;
``protocol``: ``PROTOCOL`` (the train, validation and test blocks) and ``check_training_slices``; ``user``:
``load_user_stack``, a user's own 2D image and label stack in the same form (``unet-repro train --images``);
``folders``: ``write_png_folders``, a stack as the folders of PNG slices ``user`` reads (notebook 07).
"""
