"""``python -m unet_repro.evaluate``: the evaluation command (no torch), in :mod:`unet_repro.metrics.command`."""

if __name__ == "__main__":  # pragma: no cover
    from unet_repro.metrics.command import main

    raise SystemExit(main())
