"""``python -m unet_repro.predict``: the overlap-tile prediction command, in :mod:`unet_repro.inference.command`."""

if __name__ == "__main__":  # pragma: no cover
    from unet_repro.inference.command import main

    raise SystemExit(main())
