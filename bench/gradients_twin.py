#!/usr/bin/python3
"""Python/PyTorch twin of privaudit's gradient attacks, for bench/gradients_bench.cpp.

Same algorithms and hyper-parameters as src/privaudit/attacks/{dlg,idlg,inverting_gradients}.cpp,
same LeNet weights and target (read from raw float32 files the C++ side writes), same seeded
initialisation (torch's CPU generator is the same in LibTorch and PyTorch 1.13).

usage: gradients_twin.py DIR ATTACK(dlg|idlg|ig) SEED ITERATIONS THRESHOLD_DB
       gradients_twin.py DIR inversefed SEED ITERATIONS THRESHOLD_DB CHECKOUT
prints one JSON object: iterations run, seconds to reach THRESHOLD_DB (null if never), final PSNR,
the first iteration's gradient distance (to check both sides start at the same point).

`inversefed` runs the live peer instead: GradientReconstructor of Geiping et al.'s own code
(github.com/JonasGeiping/invertinggradients, a checkout at CHECKOUT; it needs Debian's
python3-torchvision) with privaudit's IG settings (cosine cost, signed Adam at lr 0.1 with its
3/8, 5/8, 7/8 decay, TV 1e-4, boxed to [0, 1], one restart), whole ITERATIONS (it has no early
stop to time), from its own randn start; it reports the whole run's seconds and final PSNR.
"""
import json
import math
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F


def lenet():
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 12, 5, stride=2, padding=2), torch.nn.Sigmoid(),
        torch.nn.Conv2d(12, 12, 5, stride=2, padding=2), torch.nn.Sigmoid(),
        torch.nn.Conv2d(12, 12, 5, stride=1, padding=2), torch.nn.Sigmoid(),
        torch.nn.Flatten(), torch.nn.Linear(588, 10))


def load_weights(model, path, name):
    """Copies the raw float32 values the C++ side wrote (parameters in order) into `model`."""
    flat = torch.from_numpy(np.fromfile(path, dtype=np.float32))
    offset = 0
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(flat[offset:offset + p.numel()].view_as(p))
            offset += p.numel()
    if offset != flat.numel():
        raise SystemExit(f"{path} does not match the {name}")
    return model


def load(directory):
    model = load_weights(lenet(), f"{directory}/weights.f32", "LeNet")
    image = torch.from_numpy(np.fromfile(f"{directory}/target.f32", dtype=np.float32)).view(1, 1, 28, 28)
    label = torch.tensor([int(open(f"{directory}/label.txt").read())])
    return model, image, label


def parameter_gradients(model, images, targets, create_graph):
    logits = model(images)
    if targets.dtype == torch.long:
        loss = F.cross_entropy(logits, targets)
    else:
        loss = -(targets * F.log_softmax(logits, 1)).sum(1).mean()
    return torch.autograd.grad(loss, list(model.parameters()), create_graph=create_graph)


def psnr(a, b):
    mse = ((a - b) ** 2).mean().item()
    return 100.0 if mse == 0 else min(100.0, 10 * math.log10(1 / mse))


def run_dlg(model, shared, labels, seed, iterations, watch):
    generator = torch.Generator().manual_seed(seed)
    dummy = torch.randn(1, 1, 28, 28, generator=generator).requires_grad_(True)
    variables = [dummy]
    label_logits = None
    if labels is None:
        label_logits = torch.randn(1, 10, generator=generator).requires_grad_(True)
        variables.append(label_logits)

    def distance():
        targets = labels if labels is not None else torch.softmax(label_logits, 1)
        grads = parameter_gradients(model, dummy, targets, True)
        return sum(((g - s) ** 2).sum() for g, s in zip(grads, shared))

    optimizer = torch.optim.LBFGS(variables, lr=1.0, max_iter=20, history_size=100, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        d = distance()
        grads = torch.autograd.grad(d, variables)
        for v, g in zip(variables, grads):
            v.grad = g
        return d

    initial = None
    best, since_best = math.inf, 0
    for step in range(1, iterations + 1):
        optimizer.step(closure)
        d = distance().item()
        if initial is None:
            initial = d
        if not math.isfinite(d):
            break
        if watch(step, dummy.detach().clamp(0, 1)):
            return step, initial
        if d < best * (1 - 1e-3):
            best, since_best = d, 0
        else:
            since_best += 1
            if since_best >= 25:
                return step, initial
        if d < 1e-12:
            return step, initial
    return iterations, initial


def run_ig(model, shared, labels, seed, iterations, watch, tv=1e-4, lr=0.1):
    """Inverting Gradients as privaudit runs it; returns (steps, first distance, lowest-cost image)."""
    generator = torch.Generator().manual_seed(seed)
    dummy = torch.rand(1, 1, 28, 28, generator=generator).requires_grad_(True)
    optimizer = torch.optim.Adam([dummy], lr=lr)
    milestones = [iterations * 3 // 8, iterations * 5 // 8, iterations * 7 // 8]
    shared_norm = sum((s ** 2).sum() for s in shared).sqrt()
    initial = None
    best_cost, best = math.inf, dummy.detach().clone()
    stage = 0
    for step in range(1, iterations + 1):
        optimizer.zero_grad()
        grads = parameter_gradients(model, dummy, labels, True)
        dot = sum((g * s).sum() for g, s in zip(grads, shared))
        norm = sum((g ** 2).sum() for g in grads).sqrt()
        distance = 1 - dot / (norm * shared_norm + 1e-30)
        dx = (dummy[:, :, :, 1:] - dummy[:, :, :, :-1]).abs().mean()
        dy = (dummy[:, :, 1:, :] - dummy[:, :, :-1, :]).abs().mean()
        cost = distance + tv * (dx + dy)
        grad, = torch.autograd.grad(cost, [dummy])
        if initial is None:
            initial = distance.item()
        if cost.item() < best_cost:
            best_cost, best = cost.item(), dummy.detach().clone()
        if watch(step, dummy.detach()):
            return step, initial, best
        dummy.grad = grad.sign()
        optimizer.step()
        with torch.no_grad():
            dummy.clamp_(0, 1)
        if stage < 3 and step >= milestones[stage]:
            stage += 1
            for group in optimizer.param_groups:
                group["lr"] = lr * 0.1 ** stage
    return iterations, initial, best


def run_inversefed(checkout, model, shared, image, label, seed, iterations):
    """The peer's GradientReconstructor on the same model, gradient and label."""
    import contextlib
    sys.path.insert(0, checkout)
    import inversefed  # noqa: E402 (a checkout the user names, not an installed package)
    config = dict(signed=True, boxed=True, cost_fn="sim", indices="def", weights="equal", lr=0.1,
                  optim="adam", restarts=1, max_iterations=iterations, total_variation=1e-4,
                  init="randn", filter="none", lr_decay=True, scoring_choice="loss")
    torch.manual_seed(seed)
    mean_std = (torch.zeros(1, 1, 1), torch.ones(1, 1, 1))
    start = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):  # its progress prints
        reconstructor = inversefed.GradientReconstructor(model, mean_std, config, num_images=1)
        output, _ = reconstructor.reconstruct(list(shared), label, img_shape=(1, 28, 28))
    seconds = time.perf_counter() - start
    return {"attack": "inversefed", "iterations": iterations, "seconds_to_threshold": None,
            "psnr": psnr(output.detach().clamp(0, 1), image), "first_distance": None,
            "total_seconds": seconds}


def main():
    directory, attack, seed, iterations, threshold = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
    torch.set_num_threads(1)
    model, image, label = load(directory)
    shared = [g.detach() for g in parameter_gradients(model, image, label, False)]
    if attack == "inversefed":
        print(json.dumps(run_inversefed(sys.argv[6], model, shared, image, label, seed, iterations)))
        return
    reached = {"seconds": None, "psnr": 0.0}
    start = time.perf_counter()

    def watch(step, current):
        value = psnr(current, image)
        reached["psnr"] = value
        if value >= threshold and reached["seconds"] is None:
            reached["seconds"] = time.perf_counter() - start
            return True
        return False

    if attack == "dlg":
        steps, initial = run_dlg(model, shared, None, seed, iterations, watch)
    elif attack == "idlg":
        inferred = shared[-1].argmin().view(1)
        steps, initial = run_dlg(model, shared, inferred, seed, iterations, watch)
    else:
        steps, initial, _ = run_ig(model, shared, label, seed, iterations, watch)
    print(json.dumps({"attack": attack, "iterations": steps, "seconds_to_threshold": reached["seconds"],
                      "psnr": reached["psnr"], "first_distance": initial,
                      "total_seconds": time.perf_counter() - start}))


if __name__ == "__main__":
    main()
