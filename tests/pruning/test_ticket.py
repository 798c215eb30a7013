import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lotteryir.pruning import Mask, global_magnitude
from lotteryir.pruning.ticket import entropy_bound_bytes, load_compact, read_compact_metadata, save_compact


def _sd(seed=0):
    g = torch.Generator().manual_seed(seed)
    return {
        "conv.weight": torch.randn(64, 32, 3, 3, generator=g),
        "conv.bias": torch.randn(64, generator=g),
        "lin.weight": torch.randn(300, 200, generator=g),
        "norm.weight": torch.ones(7),
        "steps": torch.tensor(3),
    }


@pytest.mark.parametrize("density", [1.0, 0.8, 0.5, 0.33, 0.107, 0.035, 0.0])
def test_roundtrip_exact_and_near_entropy(tmp_path, density):
    sd = _sd()
    prunable = {k: sd[k] for k in ("conv.weight", "lin.weight")}
    mask = global_magnitude(prunable, Mask.ones_like(prunable), 1 - density)
    pruned = {k: (v * mask[k] if k in mask else v) for k, v in sd.items()}
    path = tmp_path / "t.safetensors"
    save_compact(pruned, mask, path, metadata={"model": "toy", "density": mask.density})
    back, back_mask, header = load_compact(path)
    assert list(back) == list(sd)
    assert back_mask == mask
    for k in sd:
        assert torch.equal(back[k], pruned[k]), k
        assert back[k].dtype == sd[k].dtype
    assert header["model"] == "toy" and read_compact_metadata(path)["density"] == mask.density
    bound = entropy_bound_bytes(pruned, mask)
    size = path.stat().st_size
    header_bytes = 2048  # the JSON header: names, shapes, coding parameters
    assert size <= 1.15 * bound + header_bytes, (size, bound)


def test_fp16_values_halve_the_payload(tmp_path):
    sd = _sd()
    prunable = {"lin.weight": sd["lin.weight"]}
    mask = global_magnitude(prunable, Mask.ones_like(prunable), 0.5)
    pruned = dict(sd, **{"lin.weight": sd["lin.weight"] * mask["lin.weight"]})
    save_compact(pruned, mask, tmp_path / "a.safetensors")
    save_compact(pruned, mask, tmp_path / "b.safetensors", dtype="fp16")
    assert (tmp_path / "b.safetensors").stat().st_size < (tmp_path / "a.safetensors").stat().st_size * 0.75
    back, _, _ = load_compact(tmp_path / "b.safetensors")
    assert back["lin.weight"].dtype == torch.float32
    assert torch.allclose(back["lin.weight"], pruned["lin.weight"], atol=1e-2)
    with pytest.raises(ValueError, match="dtype must be one of"):
        save_compact(pruned, mask, tmp_path / "c.safetensors", dtype="int8")


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 3000), density=st.floats(0.0, 1.0), seed=st.integers(0, 1000))
def test_mask_coding_roundtrips_any_density(tmp_path_factory, n, density, seed):
    g = torch.Generator().manual_seed(seed)
    m = torch.rand(n, generator=g) < density
    w = torch.randn(n, generator=g) * m
    path = tmp_path_factory.mktemp("t") / "t.safetensors"
    save_compact({"w": w}, Mask({"w": m}), path)
    back, back_mask, _ = load_compact(path)
    assert torch.equal(back_mask["w"], m) and torch.equal(back["w"], w)


def test_not_a_ticket(tmp_path):
    from safetensors.torch import save_file

    save_file({"x": torch.zeros(2)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(ValueError, match="not a lotteryir ticket"):
        load_compact(tmp_path / "plain.safetensors")
    with pytest.raises(FileNotFoundError):
        load_compact(tmp_path / "nope.safetensors")
