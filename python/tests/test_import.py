"""The module imports next to Debian's torch and hands tensors both ways."""
import torch

import privaudit


def test_imports_beside_torch_and_names_its_version():
    assert privaudit.__version__.count(".") == 2
    assert issubclass(privaudit.Error, RuntimeError)
    assert issubclass(privaudit.UsageError, privaudit.Error)


def test_intervals_come_from_the_audits_statistics():
    iv = privaudit.interval("median", [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0])
    assert iv.estimate == 5.0 and iv.low < 5.0 < iv.high and iv.n == 9
    share = privaudit.interval("share", [1.0] * 8)
    assert share.estimate == 1.0 and share.low < 1.0


def test_the_profiles_are_the_command_lines():
    quick = privaudit._native.profile("quick")
    assert quick["gradients"]["targets"] > 0 and quick["gradients"]["batches"]
    try:
        privaudit._native.profile("huge")
    except privaudit.UsageError as e:
        assert str(e).startswith("--profile huge: unknown")
    else:
        raise AssertionError("an unknown profile was accepted")


def test_a_script_module_passes_through_script_unchanged():
    scripted = torch.jit.script(torch.nn.Linear(3, 2))
    assert privaudit.script(scripted) is scripted
