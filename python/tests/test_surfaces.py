"""layers, membership and audit on tiny models: each returns its figures and tensors."""
import json
import os

import torch

import privaudit
from conftest import synthetic, tiny_cnn, tiny_mlp


def test_layers_measure_every_cut_point_and_decode_the_input():
    images, labels = synthetic(96)
    result = privaudit.layers(tiny_cnn(), images, labels, samples=32, jacobian_samples=2,
                              decoder_epochs=1, attacker_size=32, targets=8, progress=False)
    names = [layer["name"] for layer in result.layers]
    assert names == ["0", "1", "2", "3"]  # after each child but the last
    # Conv2d(1, 4) keeps the 784 input dimensions in 3136 outputs: full rank.
    assert result.layers[0]["jacobian_rank"] == 784
    assert len(result.target_psnr(0)) == 8


def test_membership_scores_every_attack_on_copies_of_the_model():
    images, labels = synthetic(40)
    population = synthetic(20, seed=1)
    result = privaudit.membership(tiny_mlp(hidden=8), (images, labels), population, models=2,
                                  epochs=1, batch_size=20, attacks="loss", progress=False)
    assert [a["attack"] for a in result.attacks] == ["loss"]
    assert 0.0 <= result.attacks[0]["auc"] <= 1.0
    assert result.figures["models"] == 2


def test_audit_reports_a_verdict_with_intervals_and_writes_its_page(tmp_path):
    train = synthetic(40)
    test = synthetic(40, seed=1)
    report = privaudit.audit(tiny_mlp(hidden=16), train=train, test=test,
                             surfaces=("gradients",), profile="smoke", out=str(tmp_path),
                             progress=False)
    cells = report.surfaces
    assert cells and all(c["surface"].startswith("gradients_batch") for c in cells)
    # An MLP's linear first layer gives batch-1 images away exactly (linear-layer, certified).
    assert cells[0]["severity"] == "exact" and report.verdict["severity"] == "exact"
    assert cells[0]["low"] <= cells[0]["value"] <= cells[0]["high"]
    saved = json.loads(open(os.path.join(tmp_path, "results.json")).read())
    assert saved["verdict"]["severity"] == "exact"
    page = open(os.path.join(tmp_path, "index.html")).read()
    assert "exact recovery" in page and "data:image/png;base64," in page and "http" not in page
    assert json.loads(report.to_json())["scorecard"][0]["surface"] == cells[0]["surface"]
