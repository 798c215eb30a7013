"""benchmarks/pretrained_tickets.py --smoke: a tiny DnCNN from its weights file, every route, checked on its JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pretrained_tickets as bench
import pytest
from harness import ROOT, main
from safetensors.torch import load_file

from lotteryir.engine import evaluate
from lotteryir.models import build_model, register_import_path
from lotteryir.runs import build_run, read_config


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pt") / "pt.json"
    assert main(bench.PretrainedTickets(), ["--smoke", "--out", str(out)]) == 0
    return out


@pytest.mark.filterwarnings("ignore")
def test_every_route_and_the_dense_figure_come_from_the_given_weights(smoke: Path) -> None:
    report = json.loads(smoke.read_text())
    res, s, c = report["results"], report["summary"], report["config"]
    material = smoke.parent / "pt_material"
    weights = load_file(str(material / "tiny.safetensors"))
    # The dense figure is the weights file's own: rescored here through the public API, same protocol.
    name = register_import_path(f"{ROOT}/{c['model']}")
    assert name.endswith("benchmarks/real/dncnn.py:dncnn_tiny")
    model = build_model(name)
    model.load_state_dict(weights)
    test_sets = build_run(read_config(ROOT / res["dense"]["source"])).test_sets
    direct = evaluate(model, test_sets, device="cpu").summary()
    assert s["dense"]["S1"] == pytest.approx(direct["denoise_25/S1"]["psnr"], abs=1e-9)
    assert s["input"]["S1"] == pytest.approx(direct["denoise_25/S1"]["input_psnr"], abs=1e-9)
    assert s["dense_minus_published"]["S1"] == pytest.approx(s["dense"]["S1"] - 20.0)
    # The same weights under PromptIR's protocol (clipped, 8-bit noisy inputs): other inputs, other scores.
    uint8 = json.loads((ROOT / res["dense-uint8"]["source"] / "config.json").read_text())
    assert uint8["data_paths"]["noise"] == "uint8" and s["input_uint8"]["S1"] != s["input"]["S1"]
    assert s["float_minus_uint8"]["S1"] == pytest.approx(s["dense"]["S1"] - s["dense_uint8"]["S1"])
    # What each route cost: nothing for magnitude pruning, one or two fine-tunings of 2 steps otherwise.
    t = s["tickets"]
    assert t["magnitude"]["0.5"]["steps"] == t["magnitude+bn"]["0.2"]["steps"] == 0
    assert t["oneshot-ft"]["0.5"]["steps"] == 2 and t["lr-rewind"]["0.2"]["steps"] == t["imp-from"]["0.2"]["steps"] == 4
    for route in bench.ROUTES:
        for d in bench.DENSITIES:
            assert t[route][d]["density"] == pytest.approx(float(d), abs=0.02), (route, d)
    # Without retraining and without BatchNorm statistics the network is the given one with weights removed:
    # its rounds never trained, so round 1 scores what the masked weights score.
    assert [r["steps"] for r in res["magnitude"]["0.5"]["rounds"]] == [0, 0]
    # The scope and the learning rate were chosen on the held-out training images; every ticket used them.
    chosen = s["scope"]["chosen"]
    assert chosen == max(("global", "layerwise"), key=lambda k: sum(s["scope"][k].values()))
    lr = s["lr"]["chosen"]
    assert lr == float(max(("0.001", "1e-05"), key=lambda k: s["lr"][k]))
    cfg = json.loads((ROOT / res["oneshot-ft"]["0.5"]["source"] / "config.json").read_text())
    assert cfg["scope"] == chosen and cfg["from_weights_sha256"] == c["material"]["weights"]["sha256"]
    assert cfg["lr"] == lr and set(s["lr"]) == {"0.001", "1e-05", "chosen"}
    assert cfg["data_paths"]["noise"] == "float" and cfg["rewind"] == "none"
    imp = json.loads((ROOT / res["imp-from"]["0.2"]["source"] / "config.json").read_text())
    assert imp["rewind"] == "from" and imp["rounds"] == 2
    # The final tickets were scored on every test set by `lotteryir evaluate`.
    assert set(t["oneshot-ft"]["0.5"]["final"]) == set(t["imp-from"]["0.2"]["final"]) == {"S1", "S2"}
    assert t["oneshot-ft"]["0.5"]["final"]["S1"] == pytest.approx(t["oneshot-ft"]["0.5"]["screen"]["S1"], abs=1e-9)
    # Provenance and the material's hashes, no absolute path.
    text = smoke.read_text()
    assert report["provenance"]["commit"] and '"/tmp' not in text and '"/work' not in text
    assert c["material"]["test"]["S2"]["images"] == 2 and len(c["material"]["train"]["sha256"]) == 64


@pytest.mark.filterwarnings("ignore")
def test_a_rerun_trains_nothing_and_a_changed_setting_is_refused(smoke: Path, capsys) -> None:
    before = json.loads(smoke.read_text())["results"]
    assert main(bench.PretrainedTickets(), ["--smoke", "--out", str(smoke)]) == 0
    assert "0 unit(s) to run" in capsys.readouterr().out
    assert json.loads(smoke.read_text())["results"] == before
    assert main(bench.PretrainedTickets(), ["--smoke", "--out", str(smoke), "--loss", "l1"]) == 2
    assert "another configuration" in capsys.readouterr().err
