"""Bad input raises a Python exception with the command line's one-line message, never a crash."""
import pytest
import torch

import privaudit
from conftest import synthetic, tiny_mlp


class ReturnsADict(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(784, 10)

    def forward(self, x):
        return {"logits": self.linear(x.flatten(1))}


class NotScriptable(torch.nn.Module):
    def forward(self, x):
        return torch.from_numpy(x.numpy()).flatten(1)[:, :10] * len(set([1, 2]))


def test_a_model_that_does_not_return_logits_is_an_error():
    images, labels = synthetic(2)
    with pytest.raises(privaudit.Error) as caught:
        privaudit.attack_gradients(ReturnsADict(), images, labels, attack="linear-layer",
                                   audit=False, progress=False)
    assert "\n" not in str(caught.value).strip()


def test_what_cannot_be_scripted_is_named():
    with pytest.raises(privaudit.Error, match="model NotScriptable: torch.jit.script failed"):
        privaudit.script(NotScriptable())


def test_not_a_module_is_a_usage_error():
    images, labels = synthetic(1)
    with pytest.raises(privaudit.UsageError, match="expected a torch.nn.Module"):
        privaudit.attack_gradients(lambda x: x, images, labels, progress=False)


def test_an_unknown_attack_is_named_with_the_known_ones():
    images, labels = synthetic(1)
    with pytest.raises(privaudit.UsageError, match="nosuch"):
        privaudit.attack_gradients(tiny_mlp(), images, labels, attack="nosuch", progress=False)


def test_images_outside_zero_one_are_refused():
    images, labels = synthetic(2)
    with pytest.raises(privaudit.Error, match="images"):
        privaudit.attack_gradients(tiny_mlp(), images * 3, labels, attack="linear-layer",
                                   audit=False, progress=False)


def test_labels_that_are_not_a_vector_are_refused():
    images, _ = synthetic(2)
    with pytest.raises(privaudit.UsageError, match="labels must be a 1-D int64 tensor"):
        privaudit.attack_gradients(tiny_mlp(), images, torch.zeros(2, 2, dtype=torch.long),
                                   attack="linear-layer", audit=False, progress=False)


def test_a_file_that_is_not_an_audits_results_is_refused_in_one_line(tmp_path):
    missing = str(tmp_path / "results.json")
    with pytest.raises(privaudit.Error, match=f"^{missing}: cannot read this file$"):
        privaudit._native.analyse(missing)
    other = tmp_path / "other.json"
    other.write_text('{"command": "gradients"}')
    with pytest.raises(privaudit.Error, match="not the results.json of privaudit audit$"):
        privaudit._native.analyse(str(other))


def test_a_model_that_cannot_run_fails_the_audit_with_a_python_exception(tmp_path):
    images, labels = synthetic(8)
    with pytest.raises(privaudit.Error, match="every stage failed") as caught:
        privaudit.audit(ReturnsADict(), train=(images, labels), test=(images, labels),
                        surfaces=("features",), profile="smoke", out=str(tmp_path / "a"),
                        progress=False)
    assert "\n" not in str(caught.value).strip()
