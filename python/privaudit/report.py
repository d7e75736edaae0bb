"""``privaudit.audit``: the command line's audit (``privaudit audit --model``) on the scripted
model and the caller's tensors, and the Report of what it concluded: the typed ``Verdict`` that
``audit::analyse`` makes of its results.json (the objects the HTML report renders), the scorecard
cells, the results and the page."""

import hashlib
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import warnings

import torch

import privaudit as _pa

SURFACES = ("weights", "gradients", "features")

# The scorecard's words per severity (audit/verdict.cpp, severity_text), most severe first.
SEVERITY_TEXT = {
    "exact": "exact recovery",
    "recovered": "visually recovered",
    "leak": "measurable leak",
    "nothing": "nothing measured",
    "not_run": "not run",
}
SEVERITY_ORDER = ("exact", "recovered", "leak", "nothing", "not_run")


def _number(value):
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


class Report:
    """The audit of one model, as ``privaudit audit`` wrote it in ``folder``:

    - ``verdict``: the typed ``privaudit.Verdict`` (``surfaces`` rankings with intervals,
      ``scorecard`` rows, ``claims``, ``recommendations``, ``membership``, ``threat_models``);
    - ``surfaces``: one dict per scorecard row (surface, title, statistic, unit, value, low, high,
      n, exact, severity), NaN-free;
    - ``severity`` / ``headline``: the most severe surface's severity and its words;
    - ``results``: results.json as dicts; ``stages``: each stage's status;
    - ``to_json()``, ``to_html(path)``."""

    def __init__(self, folder, verdict, results, keep=None):
        self.folder = folder
        self.verdict = verdict
        self.results = results
        self._keep = keep  # the TemporaryDirectory of an audit without ``out``
        self.surfaces = []
        for row in verdict.scorecard:
            for cell in row.cells:
                exact = cell.exact[0] if cell.exact is not None else 0
                self.surfaces.append({
                    "surface": row.surface, "title": row.title, "arch": cell.arch,
                    "statistic": cell.statistic, "unit": row.unit, "figure": row.figure,
                    "value": _number(cell.value), "low": _number(cell.low),
                    "high": _number(cell.high), "n": cell.n, "exact": exact,
                    "severity": cell.severity, "lower_bound": cell.lower_bound})
        ran = [c for c in self.surfaces if c["severity"] != "not_run"]
        worst = min(ran, key=lambda c: SEVERITY_ORDER.index(c["severity"])) if ran else None
        self.severity = worst["severity"] if worst else "not_run"
        self.headline = (f"{SEVERITY_TEXT[self.severity]} ({worst['title']})" if worst
                         else "not run")
        self.stages = {}
        for arch in results.get("architectures", []):
            for name, stage in arch.items():
                if isinstance(stage, dict) and "status" in stage:
                    self.stages[f"{arch.get('name')}/{name}"] = stage["status"]

    def to_json(self):
        """results.json's text, as the command line wrote it."""
        with open(os.path.join(self.folder, "results.json"), encoding="utf-8") as f:
            return f.read()

    def to_html(self, path):
        """The audit's page at ``path``, with every image it shows copied beside it (the same
        relative paths): a self-contained folder, no network fetches. Returns ``path``."""
        source = os.path.join(self.folder, "index.html")
        target_folder = os.path.dirname(os.path.abspath(path))
        if os.path.abspath(path) == os.path.abspath(source):
            return path
        with open(source, encoding="utf-8") as f:
            page = f.read()
        for name in sorted(set(re.findall(r'src="([^":]+)"', page))):
            origin = os.path.join(self.folder, name)
            if os.path.isfile(origin):
                os.makedirs(os.path.dirname(os.path.join(target_folder, name)), exist_ok=True)
                shutil.copyfile(origin, os.path.join(target_folder, name))
        os.makedirs(target_folder, exist_ok=True)
        temporary = path + ".tmp"
        with open(temporary, "w", encoding="utf-8") as f:
            f.write(page)
        os.replace(temporary, path)
        return path

    def __repr__(self):
        cells = "; ".join(f"{c['surface']}: {SEVERITY_TEXT[c['severity']]}" for c in self.surfaces)
        return f"<Report {self.headline} ({cells})>"


def executable():
    """The privaudit command line privaudit.audit runs: $PRIVAUDIT_CLI, else the one built beside
    this module."""
    return os.environ.get("PRIVAUDIT_CLI") or _pa._native.executable()


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_inputs(folder, model, train, test, class_names, refuse_change=None):
    """model.pt and data.pt in ``folder`` (beside an audit's folder); each replaced only when its
    content changes, so a rerun with the same model and data continues the audit. When one would
    change, ``refuse_change()`` is called first (it raises to leave both as they are)."""
    train_images, train_labels = _pa._tensors(train, "train")
    test_images, test_labels = _pa._tensors(test, "test")
    shape = _pa._shape(test_images)
    names = _pa._classes(model, test_images, torch.cat([train_labels, test_labels]), class_names)
    os.makedirs(folder, exist_ok=True)
    changed = {}
    with tempfile.TemporaryDirectory(prefix="privaudit-") as scratch:
        fresh_model = os.path.join(scratch, "model.pt")
        torch.jit.save(_pa.script(model, test_images[:1]), fresh_model)
        fresh_data = os.path.join(scratch, "data.pt")
        _pa._native.save_data(fresh_data, train_images, train_labels, test_images, test_labels,
                              names)
        pairs = (("model.pt", fresh_model), ("data.pt", fresh_data))
        for name, fresh in pairs:
            target = os.path.join(folder, name)
            changed[name] = not os.path.exists(target) or _sha256(target) != _sha256(fresh)
        if any(changed.values()) and refuse_change is not None:
            refuse_change()
        for name, fresh in pairs:
            target = os.path.join(folder, name)
            if changed[name]:
                shutil.copyfile(fresh, target + ".tmp")
                os.replace(target + ".tmp", target)
    return shape, names


def _run(command, progress):
    """Runs the audit, its stderr forwarded when ``progress``; Ctrl-C stops it (SIGINT, then
    SIGKILL after 30 s) and raises KeyboardInterrupt. Returns (exit code, last stderr lines)."""
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT)
    tail = []

    def read():
        for line in iter(process.stdout.readline, b""):
            text = line.decode("utf-8", "replace")
            tail.append(text.rstrip("\n"))
            del tail[:-20]
            if progress:
                sys.stderr.write(text)
                sys.stderr.flush()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        while True:
            try:
                code = process.wait(timeout=0.2)
                break
            except subprocess.TimeoutExpired:
                continue
    except KeyboardInterrupt:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        reader.join(timeout=5)
        raise
    reader.join(timeout=5)
    return code, tail


def audit(model, train=None, test=None, surfaces=SURFACES, profile="quick", out=None,
          class_names=None, seed=0, threads=0, progress=True, force=False):
    """Audit ``model`` (an nn.Module, scripted or traced here, or a ScriptModule) on the threat
    surfaces in ``surfaces`` with the command line's audit: ``privaudit audit --model`` on the
    scripted model and a ``tensors:`` file of ``train`` and ``test`` (tensors or DataLoaders), with
    ``--profile profile --seed seed --surfaces ...``, so the figures are the command line's:

    - ``weights``: network inversion of the weights and membership inference on re-initialised
      copies trained on halves of ``train`` (RMIA's population from ``test``);
    - ``gradients``: every gradient attack at the profile's batch sizes on ``test`` targets, FedAvg
      updates and secure aggregates, and the malicious (imprint) server;
    - ``features``: per cut point, degrees of freedom, Jacobian rank and a trained decoder.

    ``out`` keeps the audit's folder (results.json, index.html, every stage's files; the scripted
    model and the data beside it, in ``out + "-inputs"``); running again with the same model, data
    and settings continues it, ``force=True`` starts over. Without ``out`` the folder is temporary and lives as long as the
    Report. Stages run as child processes of the command line: a crash in one cannot take the
    interpreter down. Returns a Report; raises Error (UsageError for bad settings) with the
    command line's message, KeyboardInterrupt after stopping the audit on Ctrl-C. A stage that
    failed or timed out gives a warning and a Report without its figures; when every stage failed
    (a model that cannot run), Error with the first stage's message."""
    if isinstance(surfaces, str):
        surfaces = (surfaces,)
    unknown = [s for s in surfaces if s not in SURFACES]
    if unknown or not surfaces:
        raise _pa.UsageError(f"surfaces: unknown {', '.join(unknown) or '(none given)'} "
                             "(weights, gradients, features)")
    keep = None
    if out is None:
        keep = tempfile.TemporaryDirectory(prefix="privaudit-audit-")
        out = os.path.join(keep.name, "audit")
    out = os.path.abspath(out)
    # The scripted model and the data go beside the audit's folder (the audit refuses to start in
    # a folder holding files it did not write): OUT-inputs/model.pt and data.pt.
    inputs = out + "-inputs"

    def refuse():
        if os.path.exists(os.path.join(out, "privaudit.json")) and not force:
            raise _pa.UsageError(f"{out}: audited with another model or other data; pass "
                                 "force=True to start over, or another out")

    shape, names = _write_inputs(inputs, model, train, test, class_names, refuse)
    command = [executable(), "audit", "--model", os.path.join(inputs, "model.pt"),
               "--data", "tensors:" + os.path.join(inputs, "data.pt"),
               "--input-shape", ",".join(str(d) for d in shape), "--classes", str(len(names)),
               "--profile", profile, "--seed", str(int(seed)),
               "--surfaces", ",".join(surfaces), "--out", out]
    if threads:
        command += ["--threads", str(int(threads))]
    if force:
        command.append("--force")
    if not os.path.exists(command[0]):
        raise _pa.Error(f"{command[0]}: the privaudit command line is not there (build it, or "
                        "set PRIVAUDIT_CLI)")
    code, tail = _run(command, progress)
    results_path = os.path.join(out, "results.json")
    if code not in (0, 1) or not os.path.exists(results_path):
        message = next((line for line in reversed(tail) if line.startswith("privaudit")),
                       tail[-1] if tail else f"exit status {code}")
        raise (_pa.UsageError if code == 2 else _pa.Error)(message)
    with open(results_path, encoding="utf-8") as f:
        results = json.load(f)
    report = Report(out, _pa._native.analyse(results_path), results, keep)
    if code == 1:
        failed = [s for s, status in report.stages.items() if status != "done"]
        if len(failed) == len(report.stages):  # nothing measured: the model (or data) is at fault
            messages = [stage.get("message", "") for arch in results.get("architectures", [])
                        for stage in arch.values() if isinstance(stage, dict) and
                        stage.get("status") not in (None, "done")]
            first = next((m for m in messages if m), "see " + os.path.join(out, "logs"))
            raise _pa.Error(f"privaudit audit: every stage failed ({', '.join(failed)}); "
                            f"{failed[0]}: {first}")
        warnings.warn(f"privaudit audit: stage(s) {', '.join(failed) or '?'} failed or timed out; "
                      f"see {os.path.join(out, 'logs')}", RuntimeWarning, stacklevel=2)
    return report
