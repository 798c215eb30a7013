import pytest
import torch

from lotteryir.pruning import Mask, select_prunable, sparsity_report


def test_counts_equality_and_roundtrip(tmp_path):
    m = Mask({"a.weight": torch.tensor([[1, 0], [1, 1]]), "b.weight": torch.zeros(3, dtype=torch.bool)})
    assert m.num_total == 7 and m.num_remaining == 3
    assert m.density == pytest.approx(3 / 7)
    assert m.densities() == {"a.weight": 0.75, "b.weight": 0.0}
    m.save(tmp_path / "m.safetensors")
    back = Mask.load(tmp_path / "m.safetensors")
    assert back == m
    assert back["a.weight"].dtype == torch.bool
    other = m.clone()
    other["a.weight"][0, 0] = False
    assert other != m
    assert Mask({"a.weight": m["a.weight"]}) != m


def test_from_zeros_uses_conv_and_linear_tensors_and_prune_form():
    sd = {
        "conv.weight": torch.tensor([[[[0.0, 1.0]]]]),
        "conv.bias": torch.tensor([0.0]),  # 1-D: not a prunable weight
        "lin.weight_orig": torch.ones(2, 2),
        "lin.weight_mask": torch.tensor([[1.0, 0.0], [0.0, 1.0]]),
    }
    m = Mask.from_zeros(sd)
    assert set(m) == {"conv.weight", "lin.weight"}
    assert m["conv.weight"].tolist() == [[[[False, True]]]]
    assert m["lin.weight"].tolist() == [[True, False], [False, True]]
    with pytest.raises(KeyError, match="nope"):
        Mask.from_zeros(sd, names=["nope"])


def test_check_against_names_problem():
    m = Mask({"a": torch.ones(2, 2, dtype=torch.bool)})
    with pytest.raises(ValueError, match="shape mismatch: a"):
        m.check_against({"a": (3, 2)})
    with pytest.raises(ValueError, match="missing from mask: b"):
        m.check_against({"a": (2, 2), "b": (1,)})


def test_sparsity_report():
    m = Mask({"x": torch.tensor([True, False, False, False]), "y": torch.ones(4, dtype=torch.bool)})
    r = sparsity_report(m)
    assert (r.remaining, r.total) == (5, 8)
    assert r.compression == pytest.approx(8 / 5)
    assert r.tensors[0].compression == 4.0
    d = r.to_dict()
    assert d["tensors"][1]["density"] == 1.0
    assert "TOTAL" in r.format()


def test_load_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.safetensors"):
        Mask.load(tmp_path / "missing.safetensors")


def test_saved_files_get_ordinary_permissions(tmp_path):
    import os

    m = Mask({"a": torch.ones(3, dtype=torch.bool)})
    m.save(tmp_path / "m.safetensors")
    mode = os.stat(tmp_path / "m.safetensors").st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_from_zeros_looks_only_at_what_is_pruned():
    # NAFNet-style zero-initialised 4-D gains are parameters too, but not prunable weights.
    torch.manual_seed(0)
    net = torch.nn.Module()
    net.conv = torch.nn.Conv2d(4, 4, 3)
    net.beta = torch.nn.Parameter(torch.zeros(1, 4, 1, 1))
    net.lin = torch.nn.Linear(4, 2)
    with torch.no_grad():
        net.conv.weight[0, 0] = 0.0
    sd = net.state_dict()
    by_default = Mask.from_zeros(sd)
    assert set(by_default) == {"conv.weight", "lin.weight"}
    assert by_default.num_total - by_default.num_remaining == 9
    assert Mask.from_zeros(sd, names=select_prunable(net)) == by_default
    assert Mask.from_zeros(sd, names=["beta"]).density == 0.0  # asked for explicitly
