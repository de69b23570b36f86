"""Figures hold what they claim to show."""

import numpy as np
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
    with pytest.raises(ValueError, match="3 images but titles"):
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


def test_plot_confusion_matrix_draws_the_counts():
    y_true = torch.tensor([0, 0, 1, 2, 2, 2])
    y_pred = torch.tensor([0, 1, 1, 2, 0, 2])
    fig = plotting.plot_confusion_matrix(y_true, y_pred, ["a", "b", "c"])
    ax = fig.axes[0]
    want = [[1, 1, 0], [0, 1, 0], [1, 0, 2]]
    assert ax.images[0].get_array().tolist() == want  # the colours are the counts
    written = {(round(t.get_position()[1]), round(t.get_position()[0])): int(t.get_text()) for t in ax.texts}
    assert written == {(i, j): want[i][j] for i in range(3) for j in range(3)}  # (row, column) -> count
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b", "c"]
    assert ax.get_xlabel() == "predicted class" and ax.get_ylabel() == "true class"
    assert "4 of 6 correct" in ax.get_title()


def test_show_to_scale_draws_every_map_at_one_pixel_scale():
    maps = [torch.rand(16, 16), torch.randn(16, 8), torch.rand(1, 4, 4)]
    fig = plotting.show_to_scale(maps, titles=["a", "b", "c"], cmap=["gray", "RdBu_r", "magma"])
    fig.canvas.draw()
    assert [ax.get_xlim() for ax in fig.axes] == [(0, 16), (0, 8), (0, 4)]
    assert [ax.get_title() for ax in fig.axes] == ["a\n16×16", "b\n16×8", "c\n4×4"]
    per_pixel = [ax.get_window_extent().width / ax.get_xlim()[1] for ax in fig.axes]
    assert max(per_pixel) - min(per_pixel) < 1e-6 * max(per_pixel)  # the same screen size for one pixel
    lo, hi = fig.axes[1].images[0].get_clim()
    assert lo == -hi  # the signed map is centred on 0
    with pytest.raises(ValueError, match="2-D maps"):
        plotting.show_to_scale([torch.rand(3, 4, 4)])  # a colour image is not a map
    with pytest.raises(ValueError, match="2 maps but 1 titles"):
        plotting.show_to_scale([torch.rand(4, 4), torch.rand(2, 2)], titles=["a"])


def test_mosaic_places_each_tile():
    tiles = torch.arange(4.0).view(4, 1, 1, 1).expand(4, 1, 2, 2)
    m = plotting.mosaic(tiles, ncols=3, pad=1, fill=-1)
    assert m.shape == (1, 5, 8)
    assert m[0, 0, 0] == 0 and m[0, 0, 3] == 1 and m[0, 0, 6] == 2 and m[0, 3, 0] == 3
    assert m[0, 2, 0] == -1 and m[0, 3, 3] == -1  # separator and empty slot


def test_normalize_projection_keeps_zero_at_gray():
    r = torch.tensor([[[[0.0, 2.0, -4.0]]]])
    assert plotting.normalize_projection(r).flatten().tolist() == [0.5, 0.75, 0.0]


def test_normalize_projection_by_a_quantile_saturates_the_largest_values():
    r = torch.tensor([[[[0.0, 1.0, -1.0, 1.0, 100.0]]]])
    shown = plotting.normalize_projection(r, quantile=0.75).flatten().tolist()  # 0.75-quantile of |r| is 1
    assert shown == [0.5, 1.0, 0.0, 1.0, 1.0]
    with pytest.raises(ValueError, match=r"normalize_projection: expected quantile in \(0, 1\]"):
        plotting.normalize_projection(r, quantile=0.0)


def test_plot_top_projections_draws_both_mosaics():
    recon, patches = torch.randn(9, 1, 5, 5), torch.rand(9, 1, 5, 5)
    fig = plotting.plot_top_projections([("conv1 #0", recon, patches), ("conv1 #1", recon, patches)])
    assert len(fig.axes) == 4
    shown = fig.axes[1].images[0].get_array().data
    assert shown.shape == (17, 17)
    torch.testing.assert_close(torch.from_numpy(shown[:5, :5]), patches[0, 0])


def test_plot_occlusion_draws_the_panels_of_fig_7():
    from cnnlib import occlusion
    from cnnlib.models import ZFNetSmall

    torch.manual_seed(0)
    model = ZFNetSmall().eval()
    x = torch.rand(1, 28, 28)
    maps = occlusion.occlusion_maps(model, x, size=8, stride=4, layer="conv5", progress=False)
    names = [f"class {k}" for k in range(10)]
    fig = plotting.plot_occlusion(x, maps, names, projection=torch.randn(1, 28, 28), title="t")
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert [t[:3] for t in titles] == ["(a)", "(b)", "(c)", "(d)", "(e)"]
    legend = fig.axes[-1].get_legend() or next(ax.get_legend() for ax in fig.axes if ax.get_legend())
    assert {t.get_text() for t in legend.get_texts()} == {names[int(c)] for c in maps.top_class.unique()}
    fig2 = plotting.plot_occlusion(x, occlusion.occlusion_maps(model, x, target=(1, 2, 3), size=8, stride=4,
                                                            progress=False), names)
    assert fig2.axes[0].get_title().startswith("(a) class 1 + 2 more")
    assert [ax.get_title()[:3] for ax in fig2.axes if ax.get_title()] == ["(a)", "(d)", "(e)"]


def test_draw_occlusion_maps_puts_the_occluder_where_the_probability_falls_lowest():
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from cnnlib import occlusion
    from cnnlib.models import ZFNetSmall

    torch.manual_seed(0)
    model = ZFNetSmall().eval()
    x = torch.rand(1, 28, 28)
    maps = occlusion.occlusion_maps(model, x, target=3, size=6, stride=4, progress=False)
    fig = plt.figure()
    plotting.draw_occlusion_maps(fig, x, maps, [f"c{k}" for k in range(10)])
    assert [ax.get_title()[:3] for ax in fig.axes if ax.get_title()] == ["(a)", "(d)", "(e)"]  # no layer, no (b)
    i, j = divmod(int(maps.prob.argmin()), maps.prob.shape[1])
    (patch,) = [p for p in fig.axes[0].patches if isinstance(p, Rectangle)]
    assert patch.get_xy() == (int(maps.cols[j]) - 3 - 0.5, int(maps.rows[i]) - 3 - 0.5)
    assert patch.get_width() == patch.get_height() == 6
    assert f"p = {maps.base_prob:.2f}" in fig.axes[0].get_title()


def _cascade_maps(S=3, side=12):
    g = torch.Generator().manual_seed(0)
    return {m: torch.rand(S + 1, side, side, generator=g) for m in ("gradient", "deconvnet")}


def test_plot_cascade_draws_each_map_scaled_to_its_maximum_at_readable_size():
    maps = _cascade_maps()
    maps["gradient"][2] *= 7.0  # a map's scale must not show: each is scaled by its own maximum
    fig = plotting.plot_cascade(torch.rand(1, 12, 12), maps, ["fc8", "fc7", "fc6"], title="t")
    shown = [ax for ax in fig.axes if ax.images and ax.get_title() != "image"]
    assert len(shown) == 2 * 4
    titles = [ax.get_title() for ax in shown[:4]]
    assert titles == ["trained", "→ fc8", "→ fc7", "→ fc6"]
    np.testing.assert_allclose(shown[2].images[0].get_array().max(), 1.0)
    w_px = shown[0].get_window_extent().width
    assert w_px >= 64, w_px  # at the figure's dpi: a map is at least 64 pixels wide
    with pytest.raises(ValueError, match=r"plot_cascade: maps\['gradient'\] must be \(1 \+ 2 steps"):
        plotting.plot_cascade(torch.rand(1, 12, 12), maps, ["fc8", "fc7"])


def test_plot_similarity_curves_reads_the_results():
    steps = [{"step": s, "vs_trained": {"class/gradient": {"spearman_abs": [v, 0.1]}}} for s, v in
             [("fc8", 0.5), ("fc7", 0.2)]]
    result = {"cascade": steps, "floor_unrelated": {"class/gradient": {"spearman_abs": [0.15, 0.1]}},
              "edges_trained": {"class/gradient": {"spearman_abs": [0.3, 0.1]}}}
    fig = plotting.plot_similarity_curves(result)
    ax = fig.axes[0]
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [1.0, 0.5, 0.2])
    assert ax.lines[1].get_ydata()[0] == 0.15 and ax.lines[2].get_ydata()[0] == 0.3
    with pytest.raises(ValueError, match="plot_similarity_curves: the result has no 'independent' steps"):
        plotting.plot_similarity_curves(result, kind="independent")
