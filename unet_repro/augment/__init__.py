"""Chapter 03, data augmentation (section 3.1 of the paper).

``resampling``: ``resample`` (one interpolation for image, label and weights); ``elastic``: the smooth
deformation field (``elastic_displacement``, ``elastic_deform``, ``jacobian_determinant``); ``augmenter``:
:class:`Augmenter` (elastic, rigid and gray-value changes together); ``deformation``: the statistics and
views notebook 03 shows.
"""
