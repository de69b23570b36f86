"""Figures hold what they claim to show."""

import pytest
import torch
from IPython.display import HTML

from cnnlib import plotting


def test_show_images_grid_and_titles():
    fig = plotting.show_images(torch.rand(5, 1, 8, 8), titles=list("abcde"), ncols=3)
    axes = fig.axes
    assert len(axes) == 6  # 2 rows × 3 columns, one left empty
    assert [ax.get_title() for ax in axes[:5]] == list("abcde")
    assert len(axes[5].images) == 0
    rgb = plotting.show_images(torch.rand(2, 3, 8, 8))
    assert rgb.axes[0].images[0].get_array().shape == (8, 8, 3)
    with pytest.raises(ValueError, match="2 titles"):
        plotting.show_images(torch.rand(3, 1, 4, 4), titles=["a", "b"])


def test_to_numpy_image_rejects_bad_channels():
    with pytest.raises(ValueError, match="1 or 3 channels"):
        plotting.to_numpy_image(torch.rand(4, 5, 5))


def test_jshtml_slider_holds_every_frame():
    states = [0, 1, 2, 3]
    html = plotting.jshtml_slider(lambda fig, s: fig.add_subplot().plot([0, s]), states)
    assert isinstance(html, HTML)
    assert html.data.count("data:image/png;base64") == len(states)
    assert "http" not in html.data.replace("http://www.w3.org", "")  # nothing fetched from the network
