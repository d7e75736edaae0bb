"""privaudit from Python: how much of its training data a classifier leaks.

The model is the ``torch.nn.Module`` you already have (or a ``torch.jit.ScriptModule``). Each
function scripts it (``torch.jit.script``, else ``torch.jit.trace`` on one of your images), writes
it to a temporary TorchScript file and runs the same C++ experiment as the command line's
``--model FILE.pt``: the same seed gives the same figures as ``privaudit gradients``, ``layers`` and
``membership``. Images are ``N x C x H x W`` float tensors in [0, 1], labels ``N`` int64 tensors, or
a DataLoader (or any iterable) of ``(images, labels)`` batches.

Errors raise ``privaudit.Error`` (a RuntimeError; ``privaudit.UsageError`` for bad arguments) with
the command line's one-line message; Ctrl-C raises KeyboardInterrupt within about 50 ms of the
current attack iteration. The work runs with the GIL released. See docs/python.md.
"""

import contextlib
import json
import os
import tempfile

import torch

from . import _privaudit as _native
from ._privaudit import (Claim, Error, GradientRun, Interval, MembershipRow, RankedArchitecture,
                         RankStep, Recommendation, ScoreCell, ScoreRow, StrongestAttack,
                         SurfaceRanking, ThreatModelRow, UsageError, Verdict)

__all__ = [
    "Error", "UsageError", "Interval", "GradientRun", "StrongestAttack", "GradientAttackResult",
    "LayersResult", "MembershipResult", "Report", "script", "attack_gradients", "layers",
    "membership", "audit", "interval", "load_data", "Verdict", "SurfaceRanking",
    "RankedArchitecture", "RankStep", "ScoreRow", "ScoreCell", "Claim", "Recommendation",
    "MembershipRow", "ThreatModelRow",
]
__version__ = _native.__version__


def _first_line(error):
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def script(model, example=None):
    """``model`` as a ScriptModule: itself when it is one, else ``torch.jit.script(model)``, else
    ``torch.jit.trace(model, example)`` when an example input is given. Raises Error naming the
    module and what TorchScript could not compile."""
    if isinstance(model, (torch.jit.ScriptModule, torch.jit.RecursiveScriptModule)):
        return model
    if not isinstance(model, torch.nn.Module):
        raise UsageError(f"model: expected a torch.nn.Module or ScriptModule, got "
                         f"{type(model).__name__}")
    try:
        return torch.jit.script(model)
    except Exception as scripting:  # TorchScript raises several types; all mean "cannot script"
        if example is None:
            raise Error(f"model {type(model).__name__}: torch.jit.script failed: "
                        f"{_first_line(scripting)}") from None
        try:
            with torch.no_grad():
                return torch.jit.trace(model, example)
        except Exception as tracing:
            raise Error(f"model {type(model).__name__}: torch.jit.script failed "
                        f"({_first_line(scripting)}) and torch.jit.trace failed "
                        f"({_first_line(tracing)})") from None


@contextlib.contextmanager
def _model_file(model, example):
    """The scripted model as a temporary TorchScript file, removed afterwards."""
    scripted = script(model, example)
    with tempfile.TemporaryDirectory(prefix="privaudit-") as folder:
        path = os.path.join(folder, "model.pt")
        torch.jit.save(scripted, path)
        yield path


def _tensors(data, what):
    """(images, labels) from a pair of tensors or an iterable of (images, labels) batches."""
    if data is None:
        raise UsageError(f"{what}: images and labels are needed")
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(
            isinstance(t, torch.Tensor) for t in data):
        images, labels = data
    else:
        try:
            batches = list(data)
        except TypeError:
            raise UsageError(f"{what}: expected (images, labels) tensors or a DataLoader, got "
                             f"{type(data).__name__}") from None
        if not batches:
            raise UsageError(f"{what}: the DataLoader gave no batches")
        try:
            images = torch.cat([b[0] for b in batches])
            labels = torch.cat([torch.as_tensor(b[1]) for b in batches])
        except Exception as e:
            raise UsageError(f"{what}: batches must be (images, labels) tensors: "
                             f"{_first_line(e)}") from None
    if not isinstance(images, torch.Tensor) or not isinstance(labels, torch.Tensor):
        raise UsageError(f"{what}: images and labels must be tensors")
    images = images.detach().cpu()
    if images.dtype != torch.float32 and images.is_floating_point():
        images = images.float()
    labels = labels.detach().cpu()
    if labels.dtype in (torch.int32, torch.int16, torch.uint8):
        labels = labels.long()
    return images, labels


def _classes(model, images, labels, class_names):
    if class_names is not None:
        return [str(c) for c in class_names]
    count = int(labels.max().item()) + 1 if labels.numel() else 1
    if isinstance(model, torch.nn.Module) and images.dim() == 4 and images.size(0) > 0:
        try:
            with torch.no_grad():
                count = max(count, int(model(images[:1]).shape[-1]))
        except Exception:
            pass  # the C++ loader reports a model that cannot run, naming the problem
    return [str(c) for c in range(count)]


def _shape(images):
    if images.dim() != 4:
        raise UsageError(f"images must be N x C x H x W, got {images.dim()} dimensions")
    return list(images.shape[1:])


def load_data(spec="fashion-mnist", train_size=0, test_size=0, train_per_class=0, seed=0):
    """A dataset as the command line's ``--data SPEC`` loads it (``fashion-mnist`` is Debian's
    dataset-fashion-mnist; ``mnist``, ``cifar10:DIR``, ``svhn:DIR``, ``folder:DIR``,
    ``idx:IMAGES,LABELS``), with ``--train-size``/``--test-size`` (seeded, class-balanced subsets)
    and ``--train-per-class``. Returns ``(train, test, class_names)``, each split an
    ``(images, labels)`` pair of tensors."""
    train_images, train_labels, test_images, test_labels, names = _native.load_data(
        spec, int(train_size), int(test_size), int(train_per_class), int(seed))
    return (train_images, train_labels), (test_images, test_labels), list(names)


def interval(statistic, values, level=0.95):
    """The audit's interval of a sample (``"median"``: order statistics, ``"share"``: Jeffreys,
    ``"mean"``: BCa bootstrap), as an Interval(estimate, low, high, n)."""
    return _native.interval(statistic, [float(v) for v in values], level)


class GradientAttackResult:
    """What ``attack_gradients`` measured.

    ``targets``: the attacked images; ``images``: the strongest attack's reconstruction of each
    (for the first batch size); ``psnr`` / ``ssim``: per target; ``runs``: every attack at every
    batch size (GradientRun, with ``images`` matched to the targets); ``strongest``: per batch size
    (StrongestAttack); ``figures``: results.json's fields as the command line writes them."""

    def __init__(self, outcome, targets):
        self.runs = list(outcome.runs)
        self.strongest = list(outcome.strongest)
        self.target_indices = list(outcome.target_indices)
        self.targets = targets
        self.strongest_images = list(outcome.strongest_images)
        self.images = self.strongest_images[0] if self.strongest_images else None
        first = self.strongest[0] if self.strongest else None
        self.psnr = list(first.psnr) if first else []
        self.ssim = list(first.ssim) if first else []
        self.risk = outcome.risk
        self.figures = json.loads(outcome.json)

    def __repr__(self):
        parts = [f"batch {s.batch_size}: median PSNR {s.median_psnr:.1f} dB, {s.exact} exact"
                 for s in self.strongest]
        return "<GradientAttackResult " + "; ".join(parts) + ">"


def attack_gradients(model, images, labels=None, attack="strongest", batch=1, targets=None,
                     indices=None, iterations=0, restarts=0, tv=None, labels_known=False,
                     train_mode=False, audit=True, audit_probes=None, audit_probe_iterations=None,
                     skip_certified=True, class_names=None, seed=0, threads=0, progress=True,
                     time_budget=0.0, model_timeout=300.0):
    """Reconstruct images from the gradients the model shares on them (``privaudit gradients``).

    ``images``/``labels``: the test split the targets come from (or a DataLoader as ``images``).
    By default every image is a target (in order, ``floor(N / B) * B`` of them per batch size);
    ``targets=K`` draws K by ``seed`` instead, ``indices`` names them by position. ``attack``:
    ``"strongest"`` (every registered attack, the best per target: the command line's ``all``), an
    attack's name (``linear-layer``, ``positional``, ``features-then-invert``, ``dlg``, ``idlg``,
    ``ig``) or a comma list. ``batch``: a batch size or a list. ``iterations``/``restarts``/``tv``:
    the attack budget (0 / None: the attacks' defaults). ``audit``: also run the gradient audit (its
    figures are in ``figures["audit"]``); ``audit_probes``/``audit_probe_iterations`` None: the
    command line's defaults. Returns a GradientAttackResult."""
    if labels is None:
        images, labels = _tensors(images, "images")
    else:
        images, labels = _tensors((images, labels), "images")
    batch_sizes = [int(b) for b in (batch if isinstance(batch, (list, tuple)) else [batch])]
    if indices is None and targets is None:
        indices = list(range(images.size(0)))
    names = "all" if attack == "strongest" else attack
    names = ",".join(names) if isinstance(names, (list, tuple)) else names
    with _model_file(model, images[:1]) as path:
        outcome = _native.gradients(
            path, _shape(images), None, images, labels,
            _classes(model, images, labels, class_names), names, batch_sizes,
            int(targets or 0), [int(i) for i in (indices or [])], int(iterations), int(restarts),
            -1.0 if tv is None else float(tv), bool(labels_known), bool(train_mode), bool(audit),
            -1 if audit_probes is None else int(audit_probes),
            -1 if audit_probe_iterations is None else int(audit_probe_iterations),
            bool(skip_certified), int(seed), int(threads), bool(progress), float(time_budget),
            float(model_timeout))
    chosen = torch.tensor(outcome.target_indices, dtype=torch.long)
    return GradientAttackResult(outcome, images.index_select(0, chosen) if len(chosen) else None)


class LayersResult:
    """What ``layers`` measured: ``layers`` (one dict per cut point: ``name``, ``output_dim``,
    ``dof``, ``jacobian_rank``, ``decoder_psnr``, ``decoder_ssim``, ``decoder_psnr_per_image``,
    ...), ``reconstructions`` (the decoder's images per cut point, one per target; None without
    the decoder), ``targets`` (the first targets, as decoder_reconstructions.png shows them above
    the reconstructions) and ``figures`` (results.json's fields)."""

    def __init__(self, outcome):
        self.figures = json.loads(outcome.json)
        self.layers = self.figures.get("layers", [])
        self.reconstructions = [r if r.numel() else None for r in outcome.reconstructions]
        self.targets = outcome.targets if outcome.targets.numel() else None

    def target_psnr(self, index):
        """Per-target PSNR of the decoder at the cut point ``index`` (empty without it)."""
        return list(self.layers[index].get("decoder_psnr_per_image") or [])

    def __repr__(self):
        return "<LayersResult " + ", ".join(
            f"{l.get('name')}: {l.get('decoder_psnr', float('nan')):.1f} dB"
            for l in self.layers) + ">"


def layers(model, images, labels=None, cuts=None, samples=1000, jacobian_samples=8, decoder=True,
           decoder_epochs=5, attacker_size=5000, targets=1000, class_names=None, seed=0,
           threads=0, progress=True, time_budget=0.0, model_timeout=300.0):
    """Per-layer leakage of the model's intermediate outputs (``privaudit layers``): degrees of
    freedom, Jacobian rank and a decoder, trained on the first half of ``images``, that rebuilds
    images of the second half from each cut point. Cut points are the module's children run in
    order (an ``nn.Sequential`` of layers has one after each). Returns a LayersResult."""
    if labels is None:
        images, labels = _tensors(images, "images")
    else:
        images, labels = _tensors((images, labels), "images")
    with _model_file(model, images[:1]) as path:
        outcome = _native.layers(
            path, _shape(images), None, images, labels,
            _classes(model, images, labels, class_names), list(cuts or []), int(samples),
            int(jacobian_samples), bool(decoder), int(decoder_epochs), int(attacker_size),
            int(targets), int(seed), int(threads), bool(progress), float(time_budget),
            float(model_timeout))
    return LayersResult(outcome)


class MembershipResult:
    """What ``membership`` measured: ``attacks`` (one dict per attack: ``auc``,
    ``tpr_at_1_percent_fpr`` with ``_low``/``_high``, ``epsilon_lower_bound``, ``null``, ...) and
    ``figures`` (results.json's fields)."""

    def __init__(self, text):
        self.figures = json.loads(text)
        self.attacks = self.figures.get("attacks", [])

    def strongest(self):
        """The attack with the highest TPR at 1 % FPR, then AUC (its dict), or None: the audit's
        pick (audit/records.h)."""
        scored = [a for a in self.attacks if a.get("tpr_at_1_percent_fpr") is not None]
        return (max(scored, key=lambda a: (a["tpr_at_1_percent_fpr"], a.get("auc") or 0.0))
                if scored else None)

    def members(self):
        """Member decisions: each of the K models trained on half of the pool."""
        return int(self.figures.get("models", 0)) * (int(self.figures.get("pool_size", 0)) // 2)

    def leak(self, level=0.95):
        """Whether the strongest attack is a measurable leak by the audit's rule: its TPR at 1 %
        FPR has a Clopper-Pearson lower bound above 0.01 with Bonferroni's correction for picking
        it from all the attacks run (audit/pooling.h, membership_leak)."""
        best = self.strongest()
        if best is None or self.members() <= 0:
            return False
        detected = best.get("detected_at_1_percent_fpr")
        detected = (len(detected) if isinstance(detected, list)
                    else round(best["tpr_at_1_percent_fpr"] * self.members()))
        return _native.membership_leak(detected, self.members(), len(self.attacks), level)

    def __repr__(self):
        best = self.strongest()
        if best is None:
            return "<MembershipResult (no attack scored)>"
        return (f"<MembershipResult strongest {best.get('attack')}: TPR at 1 % FPR "
                f"{best['tpr_at_1_percent_fpr']:.3f}, AUC {best.get('auc', float('nan')):.3f}>")


def membership(model, train, test, models=4, epochs=8, batch_size=128, optimizer="adam",
               learning_rate=0.0, schedule="cosine", attacks="all", class_names=None, seed=0,
               threads=0, progress=True, model_timeout=300.0):
    """Membership inference on ``models`` re-initialised copies of the model, each trained on a
    seeded half of ``train`` (the pool); ``test`` is RMIA's population (``privaudit membership
    --model FILE``). Every attack is scored leave-one-model-out. Returns a MembershipResult."""
    pool_images, pool_labels = _tensors(train, "train")
    population_images, population_labels = _tensors(test, "test")
    names = _classes(model, pool_images, torch.cat([pool_labels, population_labels]), class_names)
    with _model_file(model, pool_images[:1]) as path:
        text = _native.membership(
            path, _shape(pool_images), pool_images, pool_labels, population_images,
            population_labels, names,
            int(models), int(epochs), int(batch_size), optimizer, float(learning_rate), schedule,
            attacks if isinstance(attacks, str) else ",".join(attacks), int(seed), int(threads),
            bool(progress), float(model_timeout))
    return MembershipResult(text)


from .report import Report, audit  # noqa: E402  (the report builds on the functions above)
