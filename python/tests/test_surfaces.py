"""layers, membership and audit on tiny models: each returns its figures and tensors."""
import json
import os
import re

import pytest
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


def test_audit_runs_the_command_lines_audit_and_returns_its_typed_verdict(cli, tmp_path):
    train = synthetic(300)
    test = synthetic(64, seed=1)
    out = tmp_path / "audit"
    report = privaudit.audit(tiny_mlp(hidden=16), train=train, test=test,
                             surfaces=("gradients",), profile="smoke", out=str(out),
                             progress=False)
    assert isinstance(report.verdict, privaudit.Verdict)
    rows = {row.surface: row for row in report.verdict.scorecard}
    # An MLP's linear first layer gives a batch-1 image away exactly (linear-layer, certified).
    batch1 = rows["gradients"].cells[0]  # "From one shared gradient"
    assert isinstance(batch1, privaudit.ScoreCell)
    assert batch1.arch == "model" and batch1.severity == "exact"
    assert batch1.low <= batch1.value <= batch1.high and batch1.value >= 40
    assert report.severity == "exact"
    # Only the gradient surfaces ran: the weights' and features' stages were never planned.
    assert set(report.stages) == {"model/gradients", "model/federated", "model/malicious"}
    assert all(status == "done" for status in report.stages.values())
    assert all(c["severity"] == "not_run" for c in report.surfaces
               if not c["surface"].startswith("gradients"))
    # The malicious server's rows: imprint through the secure aggregate, with its prediction.
    imprint = [r for r in report.verdict.threat_models if r.server == "imprint"]
    assert imprint and all(0 <= r.recovered_fraction <= 1 for r in imprint)
    # results.json and the page are the command line's; the page copies with its images.
    saved = json.loads(report.to_json())
    assert saved["ranking"] == report.verdict.to_dict()
    page = report.to_html(str(tmp_path / "copy" / "index.html"))
    text = open(page).read()
    assert "From shared gradients" in text
    for name in set(re.findall(r'src="([^":]+)"', text)):
        assert os.path.isfile(tmp_path / "copy" / name), name
    # The same model and data continue the audit; other data is refused unless forced.
    again = privaudit.audit(tiny_mlp(hidden=16), train=train, test=test,
                            surfaces=("gradients",), profile="smoke", out=str(out),
                            progress=False)
    assert again.verdict.to_dict() == report.verdict.to_dict()
    with pytest.raises(privaudit.UsageError, match="another model or other data"):
        privaudit.audit(tiny_mlp(hidden=16), train=train, test=synthetic(64, seed=2),
                        surfaces=("gradients",), profile="smoke", out=str(out), progress=False)


def test_audit_refuses_unknown_surfaces_before_any_work():
    with pytest.raises(privaudit.UsageError, match="unknown gradient"):
        privaudit.audit(tiny_mlp(), train=synthetic(10), test=synthetic(10),
                        surfaces=("gradient",))
