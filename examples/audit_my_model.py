#!/usr/bin/python3
"""Audit a model defined and trained in Python with privaudit.

A small CNN, trained for one epoch on a slice of Fashion-MNIST (Debian's dataset-fashion-mnist,
read by privaudit.load_data exactly as the command line reads it), then audited on its three threat
surfaces (the command line's audit, run by privaudit.audit on the scripted model): what its shared
gradients, its intermediate features and its weights give away.

    PYTHONPATH=build/python /usr/bin/python3 examples/audit_my_model.py [--quick] [--out DIR]

--quick (what CI runs) trains on 2,000 images and audits with the `smoke` profile; without it, on
10,000 images with the `quick` profile (several minutes on two cores).
"""
import argparse
import sys

import torch

import privaudit


class SmallCnn(torch.nn.Module):
    """Two convolutions and a linear classifier; a Sequential, so every layer is a cut point."""

    def __init__(self):
        super().__init__()
        self.layers = torch.nn.Sequential(
            torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(8, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Flatten(), torch.nn.Linear(16 * 7 * 7, 10))

    def forward(self, x):
        return self.layers(x)


def train_one_epoch(model, images, labels, seed):
    torch.manual_seed(seed)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(images, labels),
                                         batch_size=32, shuffle=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for x, y in loader:
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    model.eval()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small run (what CI runs)")
    parser.add_argument("--out", help="write results.json and index.html here")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    train, test, class_names = privaudit.load_data(
        "fashion-mnist", train_size=2000 if args.quick else 10000,
        test_size=500 if args.quick else 2000, seed=args.seed)
    model = SmallCnn()
    train_one_epoch(model, *train, seed=args.seed)
    with torch.no_grad():
        accuracy = (model(test[0]).argmax(1) == test[1]).float().mean().item()
    print(f"trained one epoch on {len(train[1])} images: test accuracy {accuracy:.3f}")

    report = privaudit.audit(model, train=train, test=test, class_names=class_names,
                             profile="smoke" if args.quick else "quick", out=args.out,
                             seed=args.seed)
    print(f"verdict: {report.headline}")
    for row in report.verdict.scorecard:  # privaudit.ScoreRow, one per threat surface
        cell = row.cells[0]  # one architecture: the model
        value = ("not run" if cell.severity == "not_run" else
                 f"{cell.value:.3g} [{cell.low:.3g}, {cell.high:.3g}] {row.unit}")
        print(f"  {row.title}: {cell.statistic} {value}: {cell.text}")
    for advice in report.verdict.recommendations:
        print(f"  what to do ({advice.surface}): {advice.recommendation}")
    if not report.verdict.scorecard or accuracy < 0.5:
        print("audit_my_model: the model did not train or nothing was audited", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
