"""``python -m unet_repro.train``: the training command, which lives in :mod:`unet_repro.training.command`."""

if __name__ == "__main__":  # pragma: no cover
    from unet_repro.training.command import main

    raise SystemExit(main())
