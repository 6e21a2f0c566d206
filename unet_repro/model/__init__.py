"""Chapter 01, the architecture (section 2, Fig. 1 and 2 of the paper).

``unet``: :class:`UNet`, its paper initialisation and feature-map trace; ``sizing``: :class:`UNetConfig`, the
tile arithmetic (``output_size``, ``valid_input_sizes``, ``tile_layout``) and ``mirror_canvas``; ``files``:
``save_model`` / ``load_model`` of ``model.pt``; ``shipped``: ``resolve_model`` (``--model cpu``, the network kept in
``results/cpu/model/``) and ``ship``.
"""
