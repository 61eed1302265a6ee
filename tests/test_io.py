

def test_fingerprint_tells_data_apart_and_ignores_containers():
    import numpy as np
    import torch

    from verify._io import fingerprint

    a = torch.arange(6).reshape(2, 3)
    assert fingerprint(a) == fingerprint(a.numpy()) == fingerprint(a.clone())
    changed = a.clone()
    changed[1, 2] = 7
    assert len({fingerprint(a), fingerprint(changed), fingerprint(a.float()), fingerprint(a.reshape(3, 2)),
                fingerprint(a, {"n": 1})}) == 5
    assert fingerprint(np.zeros(3), "x") != fingerprint(np.zeros(3), "y")


def test_area_downsample_averages_blocks_and_rounds_to_uint8():
    import pytest
    import torch

    from verify._io import area_downsample

    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (3, 32, 32, 3), generator=g, dtype=torch.uint8)
    y = area_downsample(x, 16)
    assert y.shape == (3, 16, 16, 3) and y.dtype == torch.uint8
    block = x[1, 4:6, 10:12, 2].double().mean()                     # pixel (2, 5) of image 1, blue channel
    assert abs(float(y[1, 2, 5, 2]) - float(block)) <= 0.5
    blocky = x[:, ::2, ::2].repeat_interleave(2, 1).repeat_interleave(2, 2)     # constant 2x2 blocks: exact
    assert torch.equal(area_downsample(blocky, 16), x[:, ::2, ::2])
    assert area_downsample(x, 32) is x
    with pytest.raises(ValueError, match="divisor"):
        area_downsample(x, 12)
