"""``python -m unet_repro.export``: a model as a BioImage Model Zoo package, in :mod:`unet_repro.inference.export`."""

if __name__ == "__main__":  # pragma: no cover
    from unet_repro.inference.export import main

    raise SystemExit(main())
