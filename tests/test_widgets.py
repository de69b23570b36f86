"""The widget callbacks draw what their controls say."""

import pytest
import torch

from cnnlib import data, layers, photos, widgets


def test_perceptron_view_counts_mistakes():
    fig = widgets.perceptron_view(0.0, 0.0, 1.0)  # always predicts 1
    X, y = data.make_separable(n=40, margin=0.2, seed=1)
    assert f"{int((y == 0).sum())} of 40 misclassified" in fig.axes[0].get_title()
    with pytest.raises(ValueError, match="dataset"):
        widgets.perceptron_view(dataset="spiral")


def test_mlp_view_trains_xor():
    fig = widgets.mlp_view(hidden_units=4, lr=0.5, num_epochs=400)
    assert "accuracy 100%" in fig.axes[0].get_title()
    loss_line = fig.axes[1].lines[0].get_ydata()
    assert len(loss_line) == 400 and loss_line[-1] < loss_line[0]


def test_kernel_view_shows_the_convolution():
    fig = widgets.kernel_view("camera", "vertical edges (Sobel x)")
    img = photos.load_photo("camera", size=128, gray=True)
    want = layers.apply_kernel(img, "vertical edges (Sobel x)")
    shown = torch.from_numpy(fig.axes[1].images[0].get_array().data)
    torch.testing.assert_close(shown, want)
    relu_shown = fig.axes[2].images[0].get_array().data
    assert relu_shown.min() >= 0


def test_custom_kernel_text():
    k = widgets.parse_kernel("1 0 -1; 2 0 -2; 1 0 -1")
    assert torch.equal(k, -layers.KERNELS["vertical edges (Sobel x)"])
    fig = widgets.kernel_view(kernel="custom", custom="0 0 0\n0 1 0\n0 0 0")
    torch.testing.assert_close(torch.from_numpy(fig.axes[1].images[0].get_array().data),
                               photos.load_photo("camera", size=128, gray=True)[0])
    with pytest.raises(ValueError, match="square grid"):
        widgets.parse_kernel("1 2; 3")
    with pytest.raises(ValueError, match="expected numbers"):
        widgets.parse_kernel("a b; c d")


def test_draw_mlp_view_into_a_slider_frame():
    import matplotlib.pyplot as plt

    fig = plt.figure()
    acc = widgets.draw_mlp_view(fig, hidden_units=1, num_epochs=200, loss_panel=False)
    assert len(fig.axes) == 1  # regions only
    assert acc < 0.9  # one hidden unit draws one line: XOR stays out of reach
    assert f"accuracy {acc:.0%}" in fig.axes[0].get_title()
    with pytest.raises(ValueError, match="hidden_units"):
        widgets.draw_mlp_view(plt.figure(), hidden_units=0)


def test_activations_view_shows_each_layer():
    from cnnlib.models import ZFNetSmall, activations

    torch.manual_seed(0)
    model = ZFNetSmall().eval()
    images = torch.rand(4, 1, 28, 28)
    fig = widgets.activations_view(model, images, index=2, maps_per_layer=4)
    assert len(fig.axes) == 5 * 5  # 5 conv layers × (input + 4 maps)
    conv3 = activations(model, images[2:3], ["conv3"])["conv3"][0]
    torch.testing.assert_close(torch.from_numpy(fig.axes[2 * 5 + 1].images[0].get_array().data), conv3[0])
    with pytest.raises(ValueError, match="index"):
        widgets.activations_view(model, images, index=4)


def test_top_projections_view():
    from cnnlib.models import ZFNetSmall
    from cnnlib.topk import mine_topk, receptive_field

    torch.manual_seed(0)
    model = ZFNetSmall().eval()
    X = torch.rand(12, 1, 28, 28)
    tops = mine_topk(model, X, ["conv2"], k=9, progress=False)
    fig = widgets.top_projections_view(model, X, tops, "conv2", 3)
    R = receptive_field(model, "conv2").size[0]
    assert fig.axes[1].images[0].get_array().shape == (3 * R + 2, 3 * R + 2)
    with pytest.raises(ValueError, match="mined layers"):
        widgets.top_projections_view(model, X, tops, "conv4", 0)


def test_draw_activations_into_a_slider_frame():
    import matplotlib.pyplot as plt

    from cnnlib.models import ZFNetSmall, activations

    model = ZFNetSmall().eval()
    images = torch.rand(3, 1, 28, 28)
    fig = plt.figure()
    probs = widgets.draw_activations(fig, model, images, index=1, layers_to_show=("conv1", "conv5"),
                                     maps_per_layer=3, class_names=[f"c{k}" for k in range(10)])
    torch.testing.assert_close(probs, model(images[1:2]).softmax(1)[0])
    assert len(fig.axes) == 2 * 4  # 2 layers × (input + 3 maps)
    conv5 = activations(model, images[1:2], ["conv5"])["conv5"][0]  # (64, 7, 7)
    torch.testing.assert_close(torch.from_numpy(fig.axes[4 + 3].images[0].get_array().data), conv5[2])
    assert fig._suptitle.get_text().startswith(f"image 1: c{int(probs.argmax())} ")
    with pytest.raises(ValueError, match="feature maps"):
        widgets.draw_activations(plt.figure(), model, images, layers_to_show=("fc7",))
    with torch.no_grad():
        model.features.conv1.bias.fill_(-100.0)  # every conv1 map below 0: drawn black, not an error
    fig = plt.figure()
    widgets.draw_activations(fig, model, images, layers_to_show=("conv1",), maps_per_layer=2)
    assert fig.axes[1].images[0].get_clim() == (0.0, 1e-6)


def test_draw_top_projections_into_a_slider_frame():
    import matplotlib.pyplot as plt

    from cnnlib.models import ZFNetSmall
    from cnnlib.topk import mine_topk, receptive_field, top_projections

    torch.manual_seed(0)
    model = ZFNetSmall().eval()
    X = torch.rand(12, 1, 28, 28)
    tops = mine_topk(model, X, ["conv3"], k=9, progress=False)
    fig = plt.figure()
    values = widgets.draw_top_projections(fig, model, X, tops, "conv3", 5)
    assert torch.equal(values, tops["conv3"].values[5]) and len(fig.axes) == 2
    R = receptive_field(model, "conv3").size[0]
    recon, patches = top_projections(model, X, tops["conv3"], 5)
    shown = torch.from_numpy(fig.axes[1].images[0].get_array().data)  # the patch mosaic, (3R + 2, 3R + 2)
    assert shown.shape == (3 * R + 2, 3 * R + 2)
    torch.testing.assert_close(shown[:R, :R], patches[0, 0])
    with pytest.raises(ValueError, match="mined layers"):
        widgets.draw_top_projections(plt.figure(), model, X, tops, "conv1", 0)


def test_occlusion_view_and_slider_frame_show_the_maps():
    import matplotlib.pyplot as plt

    from cnnlib.models import ZFNetSmall
    from cnnlib.occlusion import occlusion_maps

    torch.manual_seed(0)
    model = ZFNetSmall().eval()
    x = torch.rand(1, 28, 28)
    names = [f"c{k}" for k in range(10)]
    fig = widgets.occlusion_view(model, x, x, names, target=3, size=6, stride=4, layer="conv5")
    assert [ax.get_title()[:3] for ax in fig.axes if ax.get_title()] == ["(a)", "(b)", "(d)", "(e)"]
    frame = plt.figure()
    maps = widgets.occlude_and_draw(frame, model, x, x, names, target=3, size=6, stride=4)
    want = occlusion_maps(model, x, target=3, size=6, stride=4, progress=False)
    assert torch.equal(maps.prob, want.prob)
    prob_panel = next(ax for ax in frame.axes if ax.get_title().startswith("(d)"))
    torch.testing.assert_close(torch.from_numpy(prob_panel.images[0].get_array().data), want.prob)
    assert frame._suptitle.get_text() == "occluder 6×6, step 4"
    with pytest.raises(ValueError, match="target must be a class"):
        widgets.occlusion_view(model, x, x, names, target=12)


def test_evolution_view_and_film_frame():
    import matplotlib.pyplot as plt

    from cnnlib import evolution
    from cnnlib.models import ZFNetSmall

    models = {}
    for epoch in (1, 3):
        torch.manual_seed(epoch)
        models[epoch] = ZFNetSmall().eval()
    X = torch.rand(16, 1, 28, 28)
    evos = evolution.strongest_projections(models, X, {"conv2": [0, 1], "conv5": [4]}, progress=False)
    fig = widgets.evolution_view(models, X, evos, "conv5", 9)
    assert len(fig.axes) == 2 * 2 and fig.axes[0].get_title() == "epoch 1"
    frame = plt.figure()
    values = widgets.draw_evolution_epoch(frame, evos, 3)
    assert torch.equal(values["conv2"], evos["conv2"].values[1]) and len(frame.axes) == 2 * 2
    assert frame._suptitle.get_text() == "epoch 3"
    with pytest.raises(ValueError, match="mined layers"):
        widgets.evolution_view(models, X, evos, "conv3", 0)
    with pytest.raises(ValueError, match="one of the snapshots"):
        widgets.draw_evolution_epoch(plt.figure(), evos, 2)


def test_transfer_view_draws_the_confusion_matrix_of_one_split():
    import matplotlib.pyplot as plt

    from cnnlib import data, transfer

    torch.manual_seed(0)
    y = torch.arange(3).repeat_interleave(6)
    features = {"f": torch.randn(3, 4)[y] * 5 + torch.randn(18, 4)}
    frame = plt.figure()
    accuracy = widgets.draw_transfer(frame, features, y, ["a", "b", "c"], "f", n_per_class=2, split=1)
    train_idx, test_idx = data.split_per_class(y, 2, seed=1)
    probe = transfer.fit_softmax(features["f"][train_idx], y[train_idx], 3)
    want = transfer.mean_class_accuracy(y[test_idx], probe(features["f"][test_idx]).argmax(1))
    assert accuracy == pytest.approx(want) and f"{100 * want:.1f} %" in frame._suptitle.get_text()
    counts = frame.axes[0].images[0].get_array()
    assert counts.sum() == len(test_idx)
    fig = widgets.transfer_view(features, y, ["a", "b", "c"], "f")
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(fig).get_renderer()  # the figure's title sits above the matrix's own, not over it
    assert not fig._suptitle.get_window_extent(renderer).overlaps(fig.axes[0].title.get_window_extent(renderer))
    with pytest.raises(ValueError, match=r"^transfer_view: expected layer .* one of \['f'\], got 'g'"):
        widgets.transfer_view(features, y, ["a", "b", "c"], "g")


def test_actmax_view_shows_the_image_and_the_climb():
    import matplotlib.pyplot as plt

    from cnnlib.actmax import Regularizers, Result, maximize
    from cnnlib.models import ZFNetSmall

    torch.manual_seed(0)
    model = ZFNetSmall().eval()
    frame = plt.figure()
    reg = Regularizers(decay=0.02)
    result = widgets.draw_actmax(frame, model, "fc8", 3, (1, 28, 28), reg, steps=5, lr=0.1, title="dress")
    again = maximize(model, "fc8", 3, (1, 28, 28), reg, steps=5, lr=0.1, bounds=(0.0, 1.0))
    assert torch.equal(result.image, again.image) and result.activations == again.activations
    assert frame.axes[0].get_title() == "dress" and len(frame.axes[1].lines[0].get_ydata()) == 5
    shown = plt.figure()  # a climb made before is drawn as it is, not climbed again
    made = Result(torch.full((1, 28, 28), 0.5), [1.0, 2.0, 3.0])
    assert widgets.draw_actmax(shown, None, "fc8", 3, (1, 28, 28), result=made) is made
    assert list(shown.axes[1].lines[0].get_ydata()) == [1.0, 2.0, 3.0] and shown.axes[1].get_title() == "reached 3.0"
    with pytest.raises(TypeError, match="^draw_actmax: expected result to be an actmax.Result, got Tensor"):
        widgets.draw_actmax(plt.figure(), None, "fc8", 3, (1, 28, 28), result=torch.zeros(1, 28, 28))
    fig = widgets.actmax_view(model, [f"c{k}" for k in range(10)], channel=2, steps=3)
    assert fig.axes[0].get_title() == "c2"


def test_cascade_view_shows_the_step_asked_for():
    g = torch.Generator().manual_seed(0)
    maps = {"gradient": torch.rand(4, 10, 10, generator=g), "deconvnet": torch.rand(4, 10, 10, generator=g)}
    scores = {"gradient": [0.9, 0.5, 0.1], "deconvnet": [0.95, 0.9, 0.8]}
    fig = widgets.cascade_view(maps, ["fc8", "fc7", "fc6"], step=1, scores=scores)
    assert "down to fc7" in fig._suptitle.get_text()
    bottom = fig.axes[2:]  # second row: the maps after the step
    assert bottom[0].get_xlabel() == "ρ = 0.50" and bottom[1].get_xlabel() == "ρ = 0.90"
    shown = bottom[0].images[0].get_array()
    torch.testing.assert_close(torch.as_tensor(shown.data), (maps["gradient"][2] / maps["gradient"][2].max()).double())
    with pytest.raises(ValueError, match="draw_cascade_step: expected step"):
        widgets.cascade_view(maps, ["fc8", "fc7", "fc6"], step=3)
