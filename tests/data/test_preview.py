"""The picture grid every report and notebook draws: each picture fitted to its cell without
distortion, with its title over it."""

from __future__ import annotations

import numpy as np

from imgclf.data.views.preview import image_grid_figure


def test_each_picture_keeps_its_shape_under_its_title() -> None:
    wide = np.zeros((10, 40, 3), np.uint8)
    gray = np.full((28, 28, 1), 200, np.uint8)
    (grid,) = image_grid_figure([wide, gray, wide], ["a", "$5", "c"], columns=2).axes
    assert [t.get_text() for t in grid.texts] == ["a", r"\$5", "c"]  # '$' is not mathtext
    boxes = [picture.get_extent() for picture in grid.get_images()]
    shapes = [(10, 40), (28, 28), (10, 40)]
    for (left, right, bottom, top), shape in zip(boxes, shapes, strict=True):
        assert np.isclose((right - left) / (bottom - top), shape[1] / shape[0])
    titles = [t.get_position() for t in grid.texts]
    above = [title[1] <= box[3] for title, box in zip(titles, boxes, strict=True)]
    assert all(above)  # each title over its picture
    assert boxes[2][3] > boxes[0][2]  # the third picture starts a second row
    assert grid.get_images()[1].get_cmap().name == "gray"
