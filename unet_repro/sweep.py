"""``python -m unet_repro.sweep``: the study's sweep command, which lives in :mod:`unet_repro.study.sweep`."""

if __name__ == "__main__":  # pragma: no cover
    from unet_repro.study.sweep import main

    raise SystemExit(main())
