"""CLIP loader: frame-to-prompt cosine equals torchmetrics' CLIPScore / 100 on the same tiny random CLIP folder."""

from __future__ import annotations

import builders
import numpy as np
import pytest
import torch

from emu_video.errors import UserError
from emu_video.evaluation.clip import load_clip
from emu_video.io.video import read_video, write_video

PROMPTS = ["a red cube moves left", "two blue balls", "a green star spins", "sky", "a big yellow cone",
           "red and blue", "small ball bounces", "the end"]


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    return builders.write_tiny_clip(tmp_path_factory.mktemp("clip"), image_size=32)


def _frames_from_mp4(tmp_path, h: int, w: int, n: int = 8) -> np.ndarray:
    """Real decoded mp4 frames: smooth gradients with a moving block, so resizing is exercised."""
    yy, xx = np.mgrid[0:h, 0:w]
    frames = []
    for t in range(n):
        f = np.stack([(xx * 255 // w + 20 * t) % 256, yy * 255 // h, (xx + yy + 9 * t) % 256], -1).astype(np.uint8)
        f[h // 4 : h // 2, (3 * t) % (w // 2) : (3 * t) % (w // 2) + w // 5] = (250, 30, 60)
        frames.append(f)
    path = write_video(tmp_path / f"clip_{h}x{w}.mp4", np.stack(frames), fps=8)
    return read_video(path).frames


class _TensorFeatures(torch.nn.Module):
    """transformers 5 wraps `get_*_features` in a ModelOutput (the projected embedding is its pooler_output);
    torchmetrics expects the tensor, as transformers 4 returned it."""

    def __init__(self, model):
        super().__init__()
        self.model, self.config = model, model.config

    @staticmethod
    def _tensor(out):
        return out if isinstance(out, torch.Tensor) else out.pooler_output

    def get_image_features(self, *args, **kwargs):
        return self._tensor(self.model.get_image_features(*args, **kwargs))

    def get_text_features(self, *args, **kwargs):
        return self._tensor(self.model.get_text_features(*args, **kwargs))


def _torchmetrics_scores(clip_dir, frames: np.ndarray, prompts: list[str]) -> torch.Tensor:
    from torchmetrics.functional.multimodal.clip_score import _clip_score_update
    from transformers import CLIPModel, CLIPProcessor

    model = _TensorFeatures(CLIPModel.from_pretrained(clip_dir).eval())
    processor = CLIPProcessor.from_pretrained(clip_dir)
    images = [torch.from_numpy(f).permute(2, 0, 1) for f in frames]
    with torch.no_grad():
        score, _ = _clip_score_update(images, prompts, model, processor)
    return score


@pytest.mark.parametrize("size", [(48, 80), (24, 20)])  # downscale (landscape) and upscale (portrait)
def test_similarity_equals_torchmetrics_clipscore_over_100(clip_dir, tmp_path, size):
    pytest.importorskip("torchmetrics")
    frames = _frames_from_mp4(tmp_path, *size)
    ours = load_clip(clip_dir).similarity(torch.from_numpy(frames), PROMPTS)
    reference = _torchmetrics_scores(clip_dir, frames, PROMPTS) / 100
    assert ours.shape == (len(PROMPTS),)
    # PIL's fixed-point bicubic kernels vs torch's float ones move a few pixels by one grey level: the cosines
    # agree to 1e-3 (measured: 5e-4 at most).
    torch.testing.assert_close(ours, reference.float(), atol=1e-3, rtol=0)
    assert ours.std() > 0.02  # the prompts really give different scores, so the match is not trivial


def test_float_input_matches_uint8_and_embeddings_are_unit_norm(clip_dir, tmp_path):
    frames = _frames_from_mp4(tmp_path, 48, 80, n=4)
    scorer = load_clip(clip_dir)
    from_uint8 = scorer.image_embeddings(torch.from_numpy(frames))
    from_float = scorer.image_embeddings(torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255)
    torch.testing.assert_close(from_uint8, from_float, atol=2e-3, rtol=0)
    torch.testing.assert_close(from_uint8.norm(dim=-1), torch.ones(4))
    text = scorer.text_embeddings(["a red cube", "sky"])
    assert text.shape == (2, 16)
    torch.testing.assert_close(text.norm(dim=-1), torch.ones(2))
    one_text = scorer.similarity(torch.from_numpy(frames), ["a red cube"])
    torch.testing.assert_close(one_text, from_uint8 @ text[0])


def test_missing_or_invalid_folder_is_one_clear_line(tmp_path):
    with pytest.raises(UserError, match=r"nowhere.*local transformers CLIP folder.*openai/clip-vit-base-patch32"):
        load_clip(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="has no config.json"):
        load_clip(tmp_path / "empty")
    with pytest.raises(UserError, match="one text or one per frame"):
        scorer = load_clip(builders.write_tiny_clip(tmp_path / "c"))
        scorer.similarity(torch.zeros(3, 8, 8, 3, dtype=torch.uint8), ["a", "b"])
