"""A Python-defined model audited from Python gives the figures the command line gives on the same
scripted model, data and seed."""
import json
import os
import subprocess

import pytest
import torch

import privaudit
from conftest import require, tiny_mlp

FASHION = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"


@pytest.fixture(scope="module")
def fashion():
    require(os.path.exists(FASHION), "Debian's dataset-fashion-mnist is needed")
    return privaudit.load_data("fashion-mnist")


def run_cli(cli, args, folder):
    done = subprocess.run([cli, *args, "--out", str(folder), "--quiet", "--threads", "2"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    with open(os.path.join(folder, "results.json")) as f:
        return json.load(f)


def same(a, b, keys):
    for key in keys:
        assert key in a and key in b, key
        assert a[key] == pytest.approx(b[key], rel=1e-9, abs=1e-12, nan_ok=True), key


def test_gradients_match_the_command_line(cli, fashion, tmp_path):
    _, (images, labels), _ = fashion
    model = tiny_mlp(seed=1)
    torch.jit.script(model).save(str(tmp_path / "model.pt"))
    cli_results = run_cli(cli, ["gradients", "--model", str(tmp_path / "model.pt"),
                                "--input-shape", "1,28,28", "--attack", "linear-layer,ig",
                                "--batch", "1,2", "--indices", "0,1,2,3", "--iterations", "20",
                                "--audit-probes", "1", "--audit-probe-iterations", "5",
                                "--seed", "7"], tmp_path / "cli")
    ours = privaudit.attack_gradients(model, images, labels, attack="linear-layer,ig",
                                      batch=[1, 2], indices=[0, 1, 2, 3], iterations=20,
                                      audit_probes=1, audit_probe_iterations=5, seed=7, threads=2,
                                      progress=False).figures
    assert len(ours["runs"]) == len(cli_results["runs"]) == 4
    for a, b in zip(ours["runs"], cli_results["runs"]):
        assert (a["attack"], a["batch_size"]) == (b["attack"], b["batch_size"])
        same(a, b, ["psnr", "ssim", "mse", "exact", "label_accuracy", "iterations",
                    "gradient_distance", "target_psnr"])
    assert ours["audit"]["risk"] == pytest.approx(cli_results["audit"]["risk"], rel=1e-9)


def test_layers_match_the_command_line(cli, fashion, tmp_path):
    _, (images, labels), _ = fashion
    model = tiny_mlp(seed=2)
    torch.jit.script(model).save(str(tmp_path / "model.pt"))
    cli_results = run_cli(cli, ["layers", "--model", str(tmp_path / "model.pt"),
                                "--input-shape", "1,28,28", "--cuts", "2", "--samples", "64",
                                "--jacobian-samples", "2", "--decoder-epochs", "1",
                                "--attacker-size", "64", "--targets", "16", "--seed", "5"],
                          tmp_path / "cli")
    ours = privaudit.layers(model, images, labels, cuts=["2"], samples=64, jacobian_samples=2,
                            decoder_epochs=1, attacker_size=64, targets=16, seed=5, threads=2,
                            progress=False)
    assert [l["name"] for l in ours.layers] == [l["name"] for l in cli_results["layers"]] == ["2"]
    for a, b in zip(ours.layers, cli_results["layers"]):
        same(a, b, ["output_dim", "dof", "jacobian_rank", "decoder_psnr", "decoder_ssim",
                    "decoder_psnr_per_image"])
    assert ours.reconstructions[0].shape == (16, 1, 28, 28)


def test_audit_matches_the_command_line(cli, fashion, tmp_path):
    (train_images, train_labels), (images, labels), names = fashion
    train, test = (train_images[:300], train_labels[:300]), (images[:64], labels[:64])
    model = tiny_mlp(seed=3)
    ours = privaudit.audit(model, train=train, test=test, surfaces=("features",),
                           profile="smoke", class_names=names, seed=4, out=str(tmp_path / "py"),
                           progress=False)
    # The command line on the model scripted by hand and the same tensors.
    torch.jit.script(model).save(str(tmp_path / "model.pt"))
    privaudit._native.save_data(str(tmp_path / "data.pt"), *train, *test, names)
    done = subprocess.run([cli, "audit", "--model", str(tmp_path / "model.pt"), "--data",
                           f"tensors:{tmp_path / 'data.pt'}", "--input-shape", "1,28,28",
                           "--classes", "10", "--profile", "smoke", "--seed", "4",
                           "--surfaces", "features", "--quiet", "--out", str(tmp_path / "cli")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    with open(tmp_path / "cli" / "results.json") as f:
        theirs = json.load(f)
    assert ours.results["ranking"] == theirs["ranking"]
    def figures(entries):  # wall times aside
        return [{k: v for k, v in e.items() if "seconds" not in k} for e in entries]

    layers = [a for a in theirs["architectures"] if a["name"] == "model"][0]["layers"]
    assert figures(ours.results["architectures"][0]["layers"]["results"]["layers"]) == \
        figures(layers["results"]["layers"])
    assert [r.surface for r in ours.verdict.scorecard] == \
        [r["surface"] for r in theirs["ranking"]["scorecard"]]
