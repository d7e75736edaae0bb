"""Shared pieces of the Python tests: tiny models and data made here, the CLI's path."""
import os
import shutil

import pytest
import torch


def tiny_mlp(seed=0, hidden=32):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, hidden), torch.nn.ReLU(),
                               torch.nn.Linear(hidden, 10))


def tiny_cnn(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(),
                               torch.nn.MaxPool2d(2), torch.nn.Flatten(),
                               torch.nn.Linear(4 * 14 * 14, 10))


def synthetic(n, seed=0):
    """n images of 1 x 28 x 28 in [0,1] with labels cycling through the 10 classes."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(n, 1, 28, 28, generator=generator)
    labels = torch.arange(n, dtype=torch.long) % 10
    return images, labels


def require(condition, why):
    """Skip when a dependency is missing, except under CI=true, where it fails."""
    if condition:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(why)
    pytest.skip(why)


@pytest.fixture
def cli():
    path = os.environ.get("PRIVAUDIT_CLI") or shutil.which("privaudit")
    require(path is not None and os.path.exists(path),
            "the privaudit CLI (PRIVAUDIT_CLI) is needed")
    return path
