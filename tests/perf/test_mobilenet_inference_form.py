"""MobileNetV2's inference form (batch norm folded, channels-last) against the state-dict form, on real photos."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from gme_data.retrieval.mobilenet import fold_batch_norm, load_mobilenet_v2, preprocess


def test_folded_channels_last_network_gives_the_same_logits_and_classes():
    from gme_data.retrieval.demo_photos import photo_caption_pairs

    images, _ = photo_caption_pairs()
    x = preprocess(images[:12])
    assert x.shape == (12, 3, 224, 224) and x.is_contiguous(memory_format=torch.channels_last)
    plain, fast = load_mobilenet_v2(inference=False), load_mobilenet_v2()
    assert any(isinstance(m, nn.BatchNorm2d) for m in plain.modules())
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fast.modules())
    with torch.inference_mode():
        a, b = plain(x.contiguous()), fast(x)
    assert torch.allclose(a, b, atol=1e-3, rtol=1e-4)
    assert torch.equal(a.topk(5).indices, b.topk(5).indices)


def test_fold_batch_norm_is_exact_for_a_conv_bn_pair():
    torch.manual_seed(0)
    block = nn.Sequential(nn.Conv2d(4, 6, 3, padding=1, bias=False), nn.BatchNorm2d(6), nn.ReLU6())
    bn = block[1]
    bn.running_mean.uniform_(-1, 1)
    bn.running_var.uniform_(0.5, 2)
    bn.weight.data.uniform_(0.5, 1.5)
    bn.bias.data.uniform_(-0.5, 0.5)
    block.eval()
    x = torch.randn(2, 4, 9, 9)
    with torch.no_grad():
        want = block(x)
        fold_batch_norm(block)
        got = block(x)
    assert isinstance(block[1], nn.Identity) and block[0].bias is not None
    np.testing.assert_allclose(got.numpy(), want.numpy(), atol=1e-5)
