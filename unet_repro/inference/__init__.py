"""Chapter 04's prediction: the overlap-tile strategy (Fig. 2 of the paper).

``tiling``: ``predict_proba``, ``predict_stack`` and the test-time modes (``TTA_TRANSFORMS``), ``seam_report``;
``command``: ``predict_file`` and the ``predict`` command line; ``export``: a trained model as a BioImage Model Zoo
package (``export_bioimageio``, the ``export`` command line).
"""
