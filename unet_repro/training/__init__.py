"""Chapter 04, training (section 3 of the paper).

``config``: :class:`TrainConfig`, ``profile_config`` and ``learning_rate`` (no torch); ``tiles``: ``TileSampler``
and ``prepare_data``; ``pipeline``: the step (``TileSource``, ``StepRunner``); ``checkpoint``: exact resume;
``loop``: ``train``, ``make_optimizer``; ``command``: the ``train`` command line; ``runs``: ``ensure_run``,
where a notebook finds its run; ``curve``: ``HeldoutCurve``, the held-out scores at each checkpoint
(``curve.csv``); ``speed``: ``sgd_step_seconds``, the time of one step (notebook 04's appendix).
"""
