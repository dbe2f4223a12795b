import pytest
import torch


@pytest.fixture
def tiny_diffusers_unet(tmp_path):
    """A small random diffusers UNet2DConditionModel saved as a safetensors folder."""
    from diffusers import UNet2DConditionModel

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=16,
        in_channels=4,
        out_channels=4,
        block_out_channels=(32, 64),
        layers_per_block=2,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=24,
        attention_head_dim=4,
        norm_num_groups=8,
    ).eval()
    # Random weights everywhere (diffusers zero-inits some output layers).
    with torch.no_grad():
        for p in unet.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    folder = tmp_path / "unet"
    unet.save_pretrained(folder, safe_serialization=True)
    return unet, folder
