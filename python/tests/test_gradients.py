"""attack_gradients on models whose answer is known: a linear first layer gives its input away."""
import math

import torch

import privaudit
from conftest import synthetic, tiny_mlp


def psnr(a, b):
    mse = torch.mean((a - b) ** 2).item()
    return 100.0 if mse <= 1e-10 else 10 * math.log10(1.0 / mse)


def test_closed_form_attack_recovers_an_mlps_image_at_batch_one():
    images, labels = synthetic(4)
    result = privaudit.attack_gradients(tiny_mlp(), images, labels, attack="linear-layer",
                                        batch=1, audit=False, progress=False)
    assert result.images.shape == (4, 1, 28, 28)
    assert result.targets.shape == (4, 1, 28, 28)
    assert min(result.psnr) > 30
    # The figures describe the tensors handed back.
    for target, recon in zip(result.targets, result.images):
        assert psnr(target, recon) > 30
    assert result.runs[0].attack == "linear-layer" and result.runs[0].batch_size == 1


def test_the_same_seed_gives_the_same_reconstructions():
    images, labels = synthetic(2)
    runs = [privaudit.attack_gradients(tiny_mlp(), images, labels, attack="ig", batch=1,
                                       iterations=10, audit=False, progress=False, seed=3)
            for _ in range(2)]
    assert torch.equal(runs[0].images, runs[1].images)
    assert runs[0].psnr == runs[1].psnr


def test_a_dataloader_is_read_as_the_images():
    images, labels = synthetic(4)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(images, labels),
                                         batch_size=3)
    result = privaudit.attack_gradients(tiny_mlp(), loader, attack="linear-layer", audit=False,
                                        progress=False)
    assert torch.equal(result.targets, images)
