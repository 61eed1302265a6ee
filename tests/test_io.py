

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
