"""``privaudit.audit``: the three threat surfaces of one model, composed from attack_gradients,
layers and membership with the work of an audit profile (audit/plan.cpp), and the Report."""

import base64
import html
import json
import math
import os
import struct
import zlib

import privaudit as _pa

SURFACES = ("weights", "gradients", "features")

# The Python audit's verdict words are the scorecard's (audit/verdict.cpp, severity_text).
SEVERITY_TEXT = {
    "exact": "exact recovery",
    "recovered": "visually recovered",
    "leak": "measurable leak",
    "nothing": "nothing measured",
    "not_run": "not run",
}
SEVERITY_ORDER = ("exact", "recovered", "leak", "nothing", "not_run")


def _finite(values):
    return [v for v in values if v is not None and isinstance(v, (int, float)) and math.isfinite(v)]


def _psnr_cell(surface, title, values, exact):
    """A PSNR surface's figure: the median over targets with its order-statistic interval, and its
    severity by the scorecard's rule (audit/analysis.cpp psnr_severity)."""
    values = _finite(values)
    if not values:
        return {"surface": surface, "title": title, "severity": "not_run", "statistic": "median",
                "unit": "dB", "value": None, "low": None, "high": None, "n": 0, "exact": 0}
    iv = _pa.interval("median", values)
    if exact > 0:
        severity = "exact"
    elif iv.estimate >= _pa.RECOVERED_PSNR:
        severity = "recovered"
    elif iv.low > _pa.CHANCE_PSNR:
        severity = "leak"
    else:
        severity = "nothing"
    return {"surface": surface, "title": title, "severity": severity, "statistic": "median",
            "unit": "dB", "value": iv.estimate, "low": iv.low, "high": iv.high, "n": iv.n,
            "exact": int(exact)}


def _membership_cell(result):
    best = result.strongest()
    if best is None:
        return {"surface": "weights", "title": "From the weights: membership inference",
                "severity": "not_run", "statistic": "share", "unit": "", "value": None,
                "low": None, "high": None, "n": 0}
    return {"surface": "weights", "title": "From the weights: membership inference",
            "severity": "leak" if result.leak() else "nothing",
            "statistic": "TPR at 1 % FPR", "unit": "", "attack": best.get("attack"),
            "value": best["tpr_at_1_percent_fpr"], "low": best.get("tpr_at_1_percent_fpr_low"),
            "high": best.get("tpr_at_1_percent_fpr_high"), "auc": best.get("auc"),
            "n": result.figures.get("decisions")}


def _clean(value):
    """NaN and infinities as null, as the command line's results.json writes them."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def _png(image):
    """A C x H x W tensor in [0,1] as PNG bytes (grey or RGB), with nothing but zlib."""
    image = image.detach().clamp(0, 1).mul(255).round().byte().cpu()
    channels, height, width = image.shape
    pixels = image.permute(1, 2, 0).contiguous() if channels == 3 else image[0]
    rows = pixels.reshape(height, -1).tolist()
    raw = b"".join(b"\x00" + bytes(row) for row in rows)

    def chunk(kind, data):
        body = kind + data
        crc = zlib.crc32(body) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + body + struct.pack(">I", crc)

    colour = 2 if channels == 3 else 0
    header = struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b""))


def _fmt(value, unit=""):
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:.1f} {unit}".strip() if unit == "dB" else f"{value:.3f}"


class Report:
    """The audit of one model: ``verdict`` (the most severe surface and its words), ``surfaces``
    (one cell per threat surface: figure, interval, severity), ``results`` (each stage's
    results.json fields), ``images`` (targets and reconstructions per surface), ``to_json()``,
    ``to_html(path)``."""

    def __init__(self, cells, results, images, settings):
        self.surfaces = cells
        self.results = results
        self.images = images
        self.settings = settings
        ran = [c for c in cells if c["severity"] != "not_run"]
        worst = min(ran, key=lambda c: SEVERITY_ORDER.index(c["severity"])) if ran else None
        self.verdict = {
            "severity": worst["severity"] if worst else "not_run",
            "text": SEVERITY_TEXT[worst["severity"]] if worst else "not run",
            "surface": worst["surface"] if worst else None,
            "title": worst["title"] if worst else None,
        }

    def to_dict(self):
        return {"tool": "privaudit", "version": _pa.__version__, "command": "python audit",
                **self.settings, "verdict": self.verdict, "scorecard": self.surfaces,
                "stages": self.results}

    def to_json(self):
        """results.json's text: verdict, scorecard cells and each stage's fields."""
        return json.dumps(_clean(self.to_dict()), indent=2, allow_nan=False, default=str)

    def to_html(self, path):
        """A self-contained page (no network fetches): the verdict, the scorecard and the targets
        over their reconstructions."""
        rows = []
        for c in self.surfaces:
            interval = ("" if c.get("low") is None else
                        f" [{_fmt(c['low'], c['unit'])}, {_fmt(c['high'], c['unit'])}]")
            rows.append(
                f"<tr><td>{html.escape(c['title'])}</td><td>{html.escape(c['statistic'])}</td>"
                f"<td>{_fmt(c['value'], c['unit'])}{interval}</td>"
                f"<td>{html.escape(SEVERITY_TEXT[c['severity']])}</td></tr>")
        grids = []
        for name, (targets, recon) in self.images.items():
            if targets is None or recon is None:
                continue
            count = min(8, targets.size(0), recon.size(0))
            cells = "".join(
                f'<img alt="{kind} {i}" src="data:image/png;base64,'
                f'{base64.b64encode(_png(img[i])).decode()}" width="56">'
                for kind, img in (("target", targets), ("reconstruction", recon))
                for i in range(count))
            grids.append(f"<h3>{html.escape(name)}: targets, then reconstructions</h3>"
                         f'<div style="display:grid;grid-template-columns:repeat({count},56px);'
                         f'gap:4px">{cells}</div>')
        page = (
            "<!doctype html><html><head><meta charset='utf-8'><title>privaudit audit</title>"
            "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}"
            "td,th{border-bottom:1px solid #ccc;padding:4px 8px}"
            "img{image-rendering:pixelated}</style></head><body>"
            f"<h1>privaudit audit: {html.escape(self.verdict['text'])}</h1>"
            "<p>Each row is one way an attacker can reach the training data: what they recover, "
            "as a median over the targets (PSNR in dB, higher means closer to the real image; "
            "30 dB and above looks identical) or the share of training images a membership "
            "attack finds at 1 % false positives, with its 95 % interval.</p>"
            "<table><tr><th>Threat surface</th><th>Figure</th><th>Value [95 % interval]</th>"
            f"<th>Verdict</th></tr>{''.join(rows)}</table>{''.join(grids)}</body></html>")
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)
        temporary = path + ".tmp"
        with open(temporary, "w", encoding="utf-8") as f:
            f.write(page)
        os.replace(temporary, path)
        return path

    def __repr__(self):
        cells = "; ".join(f"{c['surface']}: {SEVERITY_TEXT[c['severity']]}" for c in self.surfaces)
        return f"<Report {self.verdict['text']} ({cells})>"


def _first(images, labels, count):
    count = min(count, images.size(0)) if count > 0 else images.size(0)
    return images[:count], labels[:count]


def audit(model, train=None, test=None, surfaces=SURFACES, profile="quick", out=None,
          class_names=None, seed=0, threads=0, progress=True):
    """Audit ``model`` on every threat surface in ``surfaces`` with the work of ``profile`` (the
    command line's ``--profile``: ``quick``, ``paper`` or ``smoke``):

    - ``gradients``: attack_gradients on the profile's number of ``test`` targets, its batch sizes,
      attacks and iterations; a cell per batch size (median PSNR of the strongest attack);
    - ``features``: layers with the profile's decoder work on ``test``; the cell is the most exposed
      cut point's median decoder PSNR;
    - ``weights``: membership on the profile's number of re-initialised copies trained on halves of
      ``train`` (the profile's pool size, else all of it; its epochs), RMIA's population from
      ``test``; the cell is the strongest attack's TPR at 1 % FPR. (The command line's audit also
      inverts the weights; this one does not.)

    Returns a Report; with ``out``, also writes ``out/results.json`` and ``out/index.html``."""
    unknown = [s for s in surfaces if s not in SURFACES]
    if unknown:
        raise _pa.UsageError(f"surfaces: unknown {', '.join(unknown)} (weights, gradients, "
                             "features)")
    work = _pa._native.profile(profile)
    test_images, test_labels = _pa._tensors(test, "test")
    cells, results, images = [], {}, {}
    common = {"class_names": class_names, "seed": seed, "threads": threads, "progress": progress}
    if "gradients" in surfaces:
        g = work["gradients"]
        attacked = _pa.attack_gradients(
            model, test_images, test_labels, attack=g["attacks"], batch=g["batches"],
            indices=list(range(min(g["targets"], test_images.size(0)))),
            iterations=g["iterations"],
            audit_probe_iterations=g["probe_iterations"] or None, **common)
        results["gradients"] = attacked.figures
        for strongest, recon in zip(attacked.strongest, attacked.strongest_images):
            cells.append(_psnr_cell(f"gradients_batch{strongest.batch_size}",
                                    f"From shared gradients, batches of {strongest.batch_size}",
                                    strongest.psnr, strongest.exact))
            images[f"gradients, batch {strongest.batch_size}"] = (
                attacked.targets, recon if recon.numel() else None)
    if "features" in surfaces:
        w = work["layers"]
        measured = _pa.layers(model, test_images, test_labels, samples=w["samples"] or 1000,
                              jacobian_samples=w["jacobian_samples"],
                              decoder_epochs=w["decoder_epochs"],
                              attacker_size=w["attacker_size"], targets=w["targets"], **common)
        results["features"] = measured.figures
        per_layer = [measured.target_psnr(i) for i in range(len(measured.layers))]
        scored = [i for i, v in enumerate(per_layer) if v]
        if scored:
            best = max(scored, key=lambda i: _pa.interval("median", per_layer[i]).estimate)
            name = measured.layers[best].get("name", str(best))
            exact = sum(1 for v in per_layer[best] if v >= _pa.EXACT_PSNR)
            cells.append(_psnr_cell("features", f"From the features at {name}", per_layer[best],
                                    exact))
            images[f"features at {name}"] = (measured.targets, measured.reconstructions[best])
        else:
            cells.append(_psnr_cell("features", "From the features", [], 0))
    if "weights" in surfaces:
        m = work["membership"]
        pool_images, pool_labels = _pa._tensors(train, "train")
        pool_size = m["pool"] or 2 * work["train"]["train_size"]
        pool = _first(pool_images, pool_labels, pool_size)
        population = _first(test_images, test_labels, m["test_size"] or work["train"]["test_size"])
        inferred = _pa.membership(model, pool, population, models=m["models"],
                                  epochs=work["train"]["epochs"], **common)
        results["weights"] = inferred.figures
        cells.append(_membership_cell(inferred))
    report = Report(cells, results, images, {"profile": profile, "seed": seed,
                                             "surfaces": list(surfaces)})
    if out is not None:
        os.makedirs(out, exist_ok=True)
        temporary = os.path.join(out, "results.json.tmp")
        with open(temporary, "w", encoding="utf-8") as f:
            f.write(report.to_json())
        os.replace(temporary, os.path.join(out, "results.json"))
        report.to_html(os.path.join(out, "index.html"))
    return report
