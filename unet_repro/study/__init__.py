"""Chapter 06, the study of the paper's claims: runs, their records, intervals and verdicts.

``grid``: a TOML grid (``load_grid``); ``sweep``: ``run_sweep``, one record per run; ``records``:
``load_records``, ``paired_effects``, ``seed_tolerances``; ``recipe``: choices made on the validation block;
``ablations``: the exploratory tables; ``curves``: held-out learning curves; ``primary``: the pre-registered
claims and ``decide``; ``ledger``: ``claims_ledger``; ``chapters``: each chapter's summary and claims;
``timing``: ``interleaved_times``.
"""
