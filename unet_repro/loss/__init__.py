"""Chapter 02, the weighted loss (eq. 1 and 2 of the paper).

``cells``: ``label_cells`` (the cells of a membrane label); ``distance``: ``border_distances`` (d1, d2);
``weights``: ``weight_maps``, ``border_weight_map``, ``class_balance`` (eq. 2); ``cross_entropy``:
``weighted_cross_entropy`` (eq. 1).
"""
